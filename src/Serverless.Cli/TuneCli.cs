using System.CommandLine;
using Serverless.Cli.Commands;
using Serverless.Model;
using Serverless.Model.Data;
using Serverless.Model.Training;

namespace Serverless.Cli;

/// <summary>The <c>tune</c> command line: builds the commands and turns every error a user can cause into one line on stderr.</summary>
public static class TuneCli
{
    /// <summary>Runs <c>tune</c> with <paramref name="args"/>, writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(error);
        var root = new RootCommand("tune: fine-tune, evaluate and serve GPT-2-compatible generative models.")
        {
            EvaluateCommand.Create(),
            GenerateCommand.Create(),
            PretrainCommand.Create(),
            FinetuneCommand.Create(),
            DemoCommand.Create(),
            BenchCommand.Create(),
        };
        foreach (var command in PipelineCommands.Create())
        {
            root.Subcommands.Add(command);
        }

        try
        {
            return root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (UserMessage(e) is { } message)
        {
            error.WriteLine($"error: {message}");
            return 1;
        }
    }

    /// <summary>The message for an error the user can fix; null for a bug, which should surface with its stack.</summary>
    private static string? UserMessage(Exception e) => e switch
    {
        ModelFormatException or DatasetValidationException or SpecException or CliException => e.Message,
        InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException => e.Message,
        ArgumentException => e.Message.Split(" (Parameter '")[0],
        _ => null,
    };
}

/// <summary>An error in how a command was used, with a message that says what to do instead.</summary>
public sealed class CliException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CliException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public CliException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public CliException(string message, Exception inner) : base(message, inner)
    {
    }
}

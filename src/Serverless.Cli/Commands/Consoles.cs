using Spectre.Console;

namespace Serverless.Cli.Commands;

/// <summary>Spectre.Console over the command's own output writer, so tests and pipes see plain text.</summary>
internal static class Consoles
{
    public static IAnsiConsole For(TextWriter output) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(output),
        Ansi = output == Console.Out ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = output == Console.Out ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
    });
}

using System.CommandLine;
using Serverless.Core.Ports;
using Serverless.Pipeline.Hosting;

namespace Serverless.Cli.Pipeline;

/// <summary>The parts a pipeline command works on: the embedded folder, or Azure's services.</summary>
internal interface IPipelineParts : IDisposable
{
    /// <summary>Where the storage is (a folder, or a blob service).</summary>
    string Location { get; }

    IBlobStore Blobs { get; }

    IMessageBus Bus { get; }

    PipelineRuntime Runtime { get; }

    /// <summary>Hosts the stages until cancelled.</summary>
    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>Chooses the parts from <c>--store</c>.</summary>
internal static class PipelineParts
{
    public const string Embedded = "embedded";
    public const string Azure = "azure";

    public static Option<string> Store()
    {
        var option = new Option<string>("--store")
        {
            Description = "embedded (a folder and SQLite, under --home) or azure (Storage__blobServiceUri, ServiceBus__fullyQualifiedNamespace, Trainer__JobResourceId from the environment).",
            DefaultValueFactory = _ => Embedded,
        };
        option.AcceptOnlyFromAmong(Embedded, Azure);
        return option;
    }

    public static IPipelineParts Open(string store, string home, int maxConcurrentJobs = 1) =>
        store == Azure ? AzurePipeline.FromEnvironment(home, Environment.GetEnvironmentVariable) : new EmbeddedPipeline(home, maxConcurrentJobs);
}

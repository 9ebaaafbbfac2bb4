using Azure.Monitor.OpenTelemetry.Exporter;
using OpenTelemetry.Trace;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Messaging;
using Serverless.Pipeline;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Resilience;
using Serverless.Trainer.Train;

namespace Serverless.Trainer;

/// <summary>Runs one job's training on the parts the environment names (today: the embedded folder and broker).</summary>
public static class TrainerProgram
{
    /// <summary>Trains <c>JOB_ID</c>; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(environment);
        var positional = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || args[i - 1] != "--home")).ToList();
        var homeIndex = Array.IndexOf(args, "--home");
        var jobId = environment("JOB_ID") ?? positional.FirstOrDefault();
        var home = homeIndex >= 0 && homeIndex + 1 < args.Length ? args[homeIndex + 1] : environment("TUNE_HOME") ?? ".tune";
        if (string.IsNullOrWhiteSpace(jobId))
        {
            await Console.Error.WriteLineAsync("error: no job: set JOB_ID or pass the job id as the first argument.");
            return 64;
        }

        using var tracing = PipelineTracing.Listen();
        using var export = environment("APPLICATIONINSIGHTS_CONNECTION_STRING") is { Length: > 0 } insights
            ? OpenTelemetry.Sdk.CreateTracerProviderBuilder()
                .AddSource(Serverless.Azure.PipelineTelemetryExtensions.Sources)
                .AddAzureMonitorTraceExporter(o =>
                {
                    o.ConnectionString = insights;
                    o.Credential = new global::Azure.Identity.DefaultAzureCredential(new global::Azure.Identity.DefaultAzureCredentialOptions { ManagedIdentityClientId = environment("AZURE_CLIENT_ID") });
                })
                .Build()
            : null;
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        var trainer = environment("Storage__blobServiceUri") is { Length: > 0 } blobUri && environment("ServiceBus__fullyQualifiedNamespace") is { Length: > 0 } ns
            ? AzureTrainer(blobUri, ns, environment("AZURE_CLIENT_ID"))
            : EmbeddedTrainer(Path.GetFullPath(home), environment);
        var outcome = await trainer.RunAsync(jobId, cancel.Token);
        Console.WriteLine($"{jobId}: {outcome}");
        return outcome == TrainerOutcome.Failed ? PipelineRuntime.ReportedFailureExitCode : 0;
    }

    /// <summary>On the embedded parts of a <c>tune up</c> folder.</summary>
    /// <remarks>Blob and bus calls are retried on transient failures; <c>TUNE_CHAOS</c> (inherited from <c>tune up --chaos</c>) injects faults underneath.</remarks>
    private static JobTrainer EmbeddedTrainer(string root, Func<string, string?> environment)
    {
        var (blobs, bus) = PortPolicies.Wrap(new FolderBlobStore(root), new SqliteMessageBus(Path.Combine(root, "bus.db")),
            ChaosOptions.FromEnvironment(environment), new PortPolicyCounters());
        return JobTrainer.Create(blobs, bus, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(root, "work") });
    }

    /// <summary>In a Container Apps job: Blob Storage and Service Bus through the job's managed identity.</summary>
    private static JobTrainer AzureTrainer(string blobServiceUri, string serviceBusNamespace, string? clientId)
    {
        var credential = new global::Azure.Identity.DefaultAzureCredential(new global::Azure.Identity.DefaultAzureCredentialOptions { ManagedIdentityClientId = clientId });
        var blobs = new Serverless.Azure.Blobs.AzureBlobStore(new global::Azure.Storage.Blobs.BlobServiceClient(new Uri(blobServiceUri), credential));
        var bus = new Serverless.Azure.Messaging.AzureMessageBus(new global::Azure.Messaging.ServiceBus.ServiceBusClient(serviceBusNamespace, credential));
        return JobTrainer.Create(blobs, bus, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(Path.GetTempPath(), "tune-trainer") });
    }
}

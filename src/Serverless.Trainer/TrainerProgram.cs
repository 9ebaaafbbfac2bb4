using Azure.Monitor.OpenTelemetry.Exporter;
using OpenTelemetry.Trace;
using System.Runtime.InteropServices;
using Serverless.Azure;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Messaging;
using Serverless.Pipeline;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Resilience;
using Serverless.Trainer.Train;

namespace Serverless.Trainer;

/// <summary>Runs one job's training on the parts the environment names: Azure (in a Container Apps job) or a <c>tune up</c> folder.</summary>
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
                    o.Credential = PipelineAzureExtensions.Credential(environment);
                })
                .Build()
            : null;
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        // Container Apps stops a replica (scale-in, replicaTimeout, a stop request) with SIGTERM, then SIGKILL after
        // terminationGracePeriodSeconds: treat it as Ctrl+C — checkpoint at the next step, report a retryable stop, exit.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            cancel.Cancel();
        });

        JobTrainer trainer;
        try
        {
            trainer = AzureTrainerPorts.FromEnvironment(environment) is { } azure
                ? JobTrainer.Create(azure.Blobs, azure.Bus, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(Path.GetTempPath(), "tune-trainer") })
                : EmbeddedTrainer(Path.GetFullPath(home), environment);
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 78;   // EX_CONFIG
        }

        var outcome = await trainer.RunAsync(jobId, cancel.Token);
        Console.WriteLine($"{jobId}: {outcome}");
        return outcome is TrainerOutcome.Failed or TrainerOutcome.Stopped ? Serverless.Pipeline.Dispatch.TrainerWatch.ReportedFailureExitCode : 0;
    }

    /// <summary>On the embedded parts of a <c>tune up</c> folder.</summary>
    /// <remarks>Blob and bus calls are retried on transient failures; <c>TUNE_CHAOS</c> (inherited from <c>tune up --chaos</c>) injects faults underneath.</remarks>
    private static JobTrainer EmbeddedTrainer(string root, Func<string, string?> environment)
    {
        var (blobs, bus) = PortPolicies.Wrap(new FolderBlobStore(root), new SqliteMessageBus(Path.Combine(root, "bus.db")),
            ChaosOptions.FromEnvironment(environment), new PortPolicyCounters());
        return JobTrainer.Create(blobs, bus, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(root, "work") });
    }
}

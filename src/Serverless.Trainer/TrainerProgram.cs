using Azure.Monitor.OpenTelemetry.Exporter;
using OpenTelemetry.Trace;
using System.Runtime.InteropServices;
using Serverless.Azure;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Messaging;
using Serverless.Model.FineTuning;
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
        if (args.Length == 2 && args[0] == SideRuns.Verb)
        {
            // A job's scratch runs, for the trainer that started this one. It stops when that one says so (or goes):
            // a terminal's Ctrl+C reaches both, and the parent must be the one to stop it, so that it copies the checkpoint.
            using var ignoreInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
            using var ignoreTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => context.Cancel = true);
            return SideRuns.Serve(args[1], Console.In, Console.Out);
        }

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
            var memoryLimit = MemoryLimit(environment("TUNE_MEMORY_LIMIT"));
            trainer = AzureTrainerPorts.FromEnvironment(environment) is { } azure
                ? JobTrainer.Create(azure.Blobs, azure.Bus, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(Path.GetTempPath(), "tune-trainer"), MemoryLimit = memoryLimit })
                : EmbeddedTrainer(Path.GetFullPath(home), environment, memoryLimit);
            trainer.SideProcess = ProcessCommand.ThisProgram(typeof(TrainerProgram).Assembly.Location);   // it trains a job's scratch runs beside the candidate's
            trainer.SideBySide = SideRuns.Setting(environment(SideRuns.Variable));
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 78;   // EX_CONFIG
        }

        var attempt = int.TryParse(environment("JOB_ATTEMPT"), System.Globalization.CultureInfo.InvariantCulture, out var a) ? a : (int?)null;
        var outcome = await trainer.RunAsync(jobId, attempt, cancel.Token);
        Console.WriteLine($"{jobId}: {outcome}");
        return outcome is TrainerOutcome.Failed or TrainerOutcome.Stopped ? Serverless.Pipeline.Dispatch.TrainerWatch.ReportedFailureExitCode : 0;
    }

    /// <summary>On the embedded parts of a <c>tune up</c> folder.</summary>
    /// <remarks>Blob and bus calls are retried on transient failures; <c>TUNE_CHAOS</c> (inherited from <c>tune up --chaos</c>) injects faults underneath.</remarks>
    private static JobTrainer EmbeddedTrainer(string root, Func<string, string?> environment, long? memoryLimit)
    {
        var (blobs, bus) = PortPolicies.Wrap(new FolderBlobStore(root), new SqliteMessageBus(Path.Combine(root, "bus.db")),
            ChaosOptions.FromEnvironment(environment), new PortPolicyCounters());
        return JobTrainer.Create(blobs, bus, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(root, "work"), MemoryLimit = memoryLimit });
    }

    /// <summary>
    /// <c>TUNE_MEMORY_LIMIT</c>: the memory the trainer may use, as bytes or with a unit (<c>512MiB</c>, <c>8GiB</c>), for
    /// when the container's limit is not visible to the runtime; unset, the runtime's own view (cgroup limit, else physical memory).
    /// </summary>
    public static long? MemoryLimit(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var text = value.Trim();
        var units = new (string Suffix, long Factor)[] { ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10), ("", 1) };
        foreach (var (suffix, factor) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var number) && number > 0)
            {
                return (long)(number * factor);
            }
        }

        throw new InvalidOperationException($"TUNE_MEMORY_LIMIT is '{value}': give bytes, or a number with KiB, MiB or GiB (e.g. 8GiB).");
    }
}

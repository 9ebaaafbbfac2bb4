using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Model;
using Serverless.Model.Data;
using Serverless.Model.FineTuning;
using Serverless.Model.Training;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Specs;

using Serverless.Pipeline;
using Serverless.Core.Ports;

namespace Serverless.Trainer.Train;

/// <summary>How a trainer run ended.</summary>
public enum TrainerOutcome
{
    /// <summary>Trained, evaluated, candidate written, <c>TrainingCompleted</c> published.</summary>
    Completed,

    /// <summary>Stopped on request with a checkpoint; the job is <c>cancelled</c>.</summary>
    Cancelled,

    /// <summary><c>TrainingFailed</c> published.</summary>
    Failed,

    /// <summary>Nothing to do (the job is already past training).</summary>
    Skipped,

    /// <summary>The process was told to stop (SIGTERM, Ctrl+C): checkpoint kept, a retryable <c>TrainingFailed</c> published.</summary>
    Stopped,
}

/// <summary>
/// Train + Evaluate, as the trainer program runs it for one job: resume from the job's checkpoints when present,
/// train with the spec's strategy, evaluate base / champion / candidate / scratch, write
/// <c>checkpoints/{jobId}/candidate/</c>, and publish <c>TrainingStarted</c>, throttled <c>TrainingProgress</c>, then
/// <c>TrainingCompleted</c> or <c>TrainingFailed</c> (saying whether a retry can help). Checkpoints are copied to
/// <c>checkpoints/{jobId}/{phase}/step-{n}/</c> with a <c>latest.json</c> pointer written last. A cancel requested
/// on the job document stops training at the next step, with a checkpoint.
/// </summary>
public sealed class JobTrainer(JobStore jobs, ModelResolver models, ModelRegistry registry, LocalFiles files, PipelineBus bus, PipelineOptions options)
{
    /// <summary>The Train + Evaluate stage over a set of ports (the trainer dispatches nothing).</summary>
    public static JobTrainer Create(IBlobStore blobs, IMessageBus bus, TimeProvider clock, PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var files = new LocalFiles(blobs);
        var registry = new ModelRegistry(blobs, files, clock);
        return new JobTrainer(new JobStore(blobs), new ModelResolver(files, registry, options), registry, files, new PipelineBus(bus, clock), options);
    }

    private const string Source = "/serverless/train";

    /// <summary>The program that trains a job's scratch runs beside its candidate's (<see cref="FineTuneRequest.SideProcess"/>); null: in turn, in this process.</summary>
    public ProcessCommand? SideProcess { get; set; }

    /// <summary>Side by side on or off; null leaves it to the job (<see cref="SideRuns.Wanted"/>).</summary>
    public bool? SideBySide { get; set; }

    /// <summary>Runs the job to an outcome. Never throws for a job-level failure: it publishes <c>TrainingFailed</c>.</summary>
    public Task<TrainerOutcome> RunAsync(string jobId, CancellationToken cancellationToken = default) => RunAsync(jobId, null, cancellationToken);

    /// <summary>Runs attempt <paramref name="attempt"/> of the job to an outcome (see the other overload).</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="attempt">The attempt this run was started for (<c>JOB_ATTEMPT</c>); a run of an earlier attempt — one that
    /// started late, after the job was retried or cancelled — does nothing. Null skips the check.</param>
    /// <param name="cancellationToken">Stops training at the next step, with a checkpoint.</param>
    public async Task<TrainerOutcome> RunAsync(string jobId, int? attempt, CancellationToken cancellationToken = default)
    {
        var found = await jobs.GetAsync(jobId, cancellationToken) ?? throw new InvalidOperationException($"Job {jobId} does not exist.");
        var job = found.Job;
        if (attempt is { } mine && mine != job.Attempts)
        {
            return TrainerOutcome.Skipped;
        }

        // A run the environment kept pending while the job showed as waiting may start late: it carries on from there.
        if (job.State is not (JobState.Dispatched or JobState.Running) && !(job.State == JobState.Waiting && job.Execution is not null))
        {
            return TrainerOutcome.Skipped;
        }

        using var activity = PipelineTracing.Start(PipelineTracing.Train, "Train", job.TraceParent);
        activity?.SetTag("job.id", jobId);
        var work = Path.Combine(options.WorkDirectory, "train", jobId);
        try
        {
            var spec = PipelineSpec.Parse(job.Spec, $"job {jobId} spec");
            job = await jobs.UpdateAsync(jobId, j => j.State == JobState.Dispatched || (j.State == JobState.Waiting && j.Execution is not null)
                ? j.MoveTo(JobState.Running, bus.Clock.GetUtcNow(), $"attempt {j.Attempts}") : null, cancellationToken);

            var baseModel = await models.ResolveAsync(spec.BaseModel, cancellationToken)
                ?? throw new ModelFormatException($"base model '{spec.BaseModel}' was not found.");

            // Refuse up front, with the numbers, a job that cannot fit in the memory this trainer may use.
            var estimate = MemoryEstimate.For(Model.Gpt2.Gpt2Config.Load(Path.Combine(baseModel, "config.json")), spec.Training,
                spec.Training.Teacher is { } teacher && File.Exists(Path.Combine(teacher, "config.json")) ? Model.Gpt2.Gpt2Config.Load(Path.Combine(teacher, "config.json")) : null);
            var memoryLimit = options.MemoryLimit ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            if (estimate.Refusal(memoryLimit, spec.Training) is { } tooBig)
            {
                throw new SpecException("spec", [$"memory: {tooBig}"]);
            }

            var memory = new MemoryBudget(estimate.TotalBytes, memoryLimit);
            job = await jobs.UpdateAsync(jobId, j => j with { Memory = memory }, cancellationToken);
            var champion = await registry.FindVersionAsync(job.Model, "champion", cancellationToken) is not null
                ? await models.ResolveAsync($"{job.Model}@champion", cancellationToken)
                : null;
            var prepared = Path.Combine(work, "prepared");
            if (await files.DownloadPrefixAsync(Containers.Prepared, $"{jobId}/", prepared, cancellationToken) == 0)
            {
                throw new InvalidOperationException($"prepared/{jobId}/ is empty: the job was never prepared.");
            }

            var output = Path.Combine(work, "out");
            var resumedFrom = await RestoreCheckpointsAsync(jobId, output, FineTuneJob.Phases(spec.Training), cancellationToken);
            await bus.PublishAsync(Entities.TrainingEvents, new TrainingStarted(job.Model, jobId, job.Attempts, resumedFrom, memory),
                PipelineBus.StableId(jobId, nameof(TrainingStarted), job.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture)), Source, cancellationToken);

            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var watch = Stopwatch.StartNew();
            TimeSpan? lastReport = null;
            var report = await Task.Run(() => FineTuneJob.Run(
                new FineTuneRequest(baseModel, null, output, spec.Training, prepared, champion)
                {
                    // A GPU when the container has one (and the CUDA libtorch), else the CPU.
                    Device = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.CUDA : TorchSharp.torch.CPU,
                    CheckpointWritten = (phase, directory) => CopyCheckpointAsync(jobId, phase, directory, spec.KeepCheckpoints, CancellationToken.None).GetAwaiter().GetResult(),
                    SideProcess = SideProcess,
                    SideBySide = SideBySide,
                },
                (phase, p) =>
                {
                    if (lastReport is { } last && watch.Elapsed - last < options.ProgressInterval && p.Step < p.TotalSteps && p.ValidationLoss is null)
                    {
                        return;
                    }

                    lastReport = watch.Elapsed;
                    var current = jobs.GetAsync(jobId, CancellationToken.None).GetAwaiter().GetResult();
                    if (current?.Job.CancelRequested == true)
                    {
                        cancel.Cancel();
                    }

                    bus.PublishAsync(Entities.TrainingEvents,
                        new Core.Contracts.TrainingProgress(job.Model, jobId, phase, p.Step, p.TotalSteps, p.Loss, p.TokensPerSecond, p.Eta.TotalSeconds, p.ValidationLoss),
                        PipelineBus.StableId(jobId, "progress", phase, p.Step.ToString(System.Globalization.CultureInfo.InvariantCulture)), Source, CancellationToken.None).GetAwaiter().GetResult();
                },
                cancel.Token), CancellationToken.None);

            await files.UploadDirectoryAsync(Path.Combine(output, FineTuneJob.CandidateDirectory), Containers.Checkpoints, $"{jobId}/candidate/", last: "metrics.json", cancellationToken);
            var metrics = JsonNode.Parse(report.ToJson())!.AsObject();
            await bus.PublishAsync(Entities.TrainingEvents, new TrainingCompleted(job.Model, jobId, $"{jobId}/candidate/", metrics),
                PipelineBus.StableId(jobId, nameof(TrainingCompleted)), Source, cancellationToken);
            return TrainerOutcome.Completed;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await jobs.UpdateAsync(jobId, j => JobStates.CanMove(j.State, JobState.Cancelled)
                ? j.MoveTo(JobState.Cancelled, bus.Clock.GetUtcNow(), "cancelled on request; checkpoint kept") with { Execution = null }
                : null, CancellationToken.None);
            return TrainerOutcome.Cancelled;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The container is being stopped (scale-in, timeout, preemption): training wrote a checkpoint at its last
            // step. Say so as a retryable failure, so the pipeline resumes the job from there in a new run.
            await FailAsync(job, "the trainer was stopped (SIGTERM, or Ctrl+C) before it finished; it resumes from its last checkpoint", retryable: true);
            return TrainerOutcome.Stopped;
        }
        catch (Exception e) when (e is SpecException or ModelFormatException or DatasetValidationException or InvalidDataException or TrainingDivergedException)
        {
            await FailAsync(job, e.Message, retryable: false);
            return TrainerOutcome.Failed;
        }
        catch (Exception e) when (Environmental(e) is { } reason)
        {
            // The environment ran out, not the job: it waits (checkpoint kept, no attempt spent) and resumes later.
            await FailAsync(job, reason, retryable: true, environmental: true, (e as EnvironmentUnavailableException)?.RetryAfter);
            return TrainerOutcome.Failed;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await FailAsync(job, $"{e.GetType().Name}: {e.Message}", retryable: true);
            return TrainerOutcome.Failed;
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }
    }

    /// <summary>
    /// Why <paramref name="e"/> is the environment running out rather than the job failing, or null: disk full or a
    /// quota (ENOSPC, EDQUOT), storage or the broker busy or throttled past the SDK's own retries (503, 500, 429;
    /// Service Bus ServiceBusy, QuotaExceeded), out of memory (the runtime's, or the GPU's).
    /// </summary>
    public static string? Environmental(Exception e)
    {
        if (DiskSpace.IsFull(e))
        {
            return $"disk full: {FirstIoMessage(e)}";
        }

        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            switch (inner)
            {
                case EnvironmentUnavailableException:
                    return inner.Message;
                case global::Azure.RequestFailedException { Status: 503 or 500 or 429 } storage:
                    return $"storage busy ({storage.Status} {storage.ErrorCode}) past its retries: {FirstLine(storage.Message)}";
                case global::Azure.Messaging.ServiceBus.ServiceBusException { Reason: global::Azure.Messaging.ServiceBus.ServiceBusFailureReason.ServiceBusy or global::Azure.Messaging.ServiceBus.ServiceBusFailureReason.QuotaExceeded } bus:
                    return $"Service Bus {bus.Reason} past its retries: {FirstLine(bus.Message)}";
                case OutOfMemoryException:
                    return "out of memory in the trainer (the runtime could not allocate)";
                case System.Runtime.InteropServices.ExternalException when inner.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase):
                    return $"out of memory: {FirstLine(inner.Message)}";
            }
        }

        return null;
    }

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();

    private static string FirstIoMessage(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is IOException)
            {
                return inner.Message;
            }
        }

        return e.Message;
    }

    private async Task FailAsync(JobDocument job, string error, bool retryable, bool environmental = false, TimeSpan? retryAfter = null) =>
        await bus.PublishAsync(Entities.TrainingEvents, new TrainingFailed(job.Model, job.JobId, error, retryable, environmental, retryAfter?.TotalSeconds),
            PipelineBus.StableId(job.JobId, nameof(TrainingFailed), job.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture)), Source, CancellationToken.None);

    /// <summary>Copies a local checkpoint to <c>checkpoints/{jobId}/{phase}/step-{n}/</c>, then points <c>latest.json</c> at it.</summary>
    private async Task CopyCheckpointAsync(string jobId, string phase, string directory, int keep, CancellationToken cancellationToken)
    {
        using var state = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "state.json"), cancellationToken));
        var step = state.RootElement.GetProperty("step").GetInt32();
        var prefix = $"{jobId}/{phase}/step-{step:D8}/";
        await files.UploadDirectoryAsync(directory, Containers.Checkpoints, prefix, last: "state.json", cancellationToken);
        var pointer = JsonSerializer.Serialize(new { step, prefix });
        await WritePointerAsync($"{jobId}/{phase}/latest.json", pointer, cancellationToken);
        await PruneCheckpointsAsync($"{jobId}/{phase}/", prefix, keep, cancellationToken);
    }

    /// <summary>
    /// Keeps the <paramref name="keep"/> newest complete checkpoints of a phase (the one <c>latest.json</c> names among
    /// them) and removes the older ones and any older copy cut short, so storage per job stays bounded.
    /// </summary>
    private async Task PruneCheckpointsAsync(string phasePrefix, string latest, int keep, CancellationToken cancellationToken)
    {
        var steps = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        await foreach (var item in files.Blobs.ListAsync(Containers.Checkpoints, phasePrefix + "step-", cancellationToken))
        {
            var folder = item.Name[..(item.Name.IndexOf('/', phasePrefix.Length) + 1)];
            if (!steps.TryGetValue(folder, out var names))
            {
                steps[folder] = names = [];
            }

            names.Add(item.Name);
        }

        var complete = steps.Where(s => s.Value.Any(n => n.EndsWith("/state.json", StringComparison.Ordinal))).Select(s => s.Key).ToList();
        var kept = complete.Where(f => string.CompareOrdinal(f, latest) <= 0).TakeLast(keep).Append(latest).ToHashSet(StringComparer.Ordinal);
        var oldestKept = kept.Min(StringComparer.Ordinal)!;
        foreach (var (folder, names) in steps)
        {
            // Only older than what is kept: a newer folder may be a copy in progress (another attempt's, after a takeover).
            if (!kept.Contains(folder) && string.CompareOrdinal(folder, oldestKept) < 0)
            {
                foreach (var name in names)
                {
                    await files.Blobs.DeleteAsync(Containers.Checkpoints, name, cancellationToken: cancellationToken);
                }
            }
        }
    }

    private async Task WritePointerAsync(string name, string json, CancellationToken cancellationToken) =>
        await files.Blobs.WriteAsync(Containers.Checkpoints, name, new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json)), cancellationToken: cancellationToken);

    /// <summary>Brings the latest copied checkpoint of each phase back to the local layout FineTuneJob resumes from.</summary>
    private async Task<int?> RestoreCheckpointsAsync(string jobId, string output, IReadOnlyList<string> phases, CancellationToken cancellationToken)
    {
        int? resumed = null;
        foreach (var phase in phases)
        {
            var pointerPath = Path.Combine(output, $"{phase}-latest.json");
            if (!await files.DownloadAsync(Containers.Checkpoints, $"{jobId}/{phase}/latest.json", pointerPath, cancellationToken: cancellationToken))
            {
                continue;
            }

            using var pointer = JsonDocument.Parse(await File.ReadAllTextAsync(pointerPath, cancellationToken));
            var prefix = pointer.RootElement.GetProperty("prefix").GetString()!;
            await files.DownloadPrefixAsync(Containers.Checkpoints, prefix, Path.Combine(output, "checkpoints", phase, "latest"), cancellationToken);
            if (phase == "candidate")
            {
                resumed = pointer.RootElement.GetProperty("step").GetInt32();
            }
        }

        return resumed;
    }
}

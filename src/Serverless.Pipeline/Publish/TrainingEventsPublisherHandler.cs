using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Model.FineTuning;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Publish;

/// <summary>
/// Publish (subscription <c>training-events/publisher</c>): on <c>TrainingCompleted</c>, applies the spec's gate;
/// approved candidates become the next registry version (<see cref="ModelRegistry"/>) and a <c>ModelPublished</c>
/// event, rejected ones a <c>ModelRejected</c> with the numbers that failed. On <c>TrainingFailed</c>: a crash is
/// retried from the checkpoint with backoff while attempts remain, else the job fails; a failure of the environment
/// (disk, capacity, memory) makes the job wait (<see cref="Dispatch.EnvironmentWait"/>) without spending an attempt. Redelivered events change nothing twice:
/// a job yields at most one version, and its events carry stable ids.
/// </summary>
public sealed class TrainingEventsPublisherHandler(JobStore jobs, ModelRegistry registry, PipelineBus bus, PipelineOptions options, Dispatch.EnvironmentWait waits, ILogger<TrainingEventsPublisherHandler> logger)
{
    private const string Source = "/serverless/publish";

    /// <summary>Handles one training event.</summary>
    public Task HandleAsync(CloudEvent e, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        return e.Type switch
        {
            nameof(TrainingCompleted) => CompletedAsync(e.DataAs<TrainingCompleted>(), cancellationToken),
            nameof(TrainingFailed) => FailedAsync(e.DataAs<TrainingFailed>(), cancellationToken),
            _ => Task.CompletedTask,
        };
    }

    private async Task CompletedAsync(TrainingCompleted completed, CancellationToken cancellationToken)
    {
        var job = (await jobs.GetAsync(completed.JobId, cancellationToken))?.Job
            ?? throw new InvalidDataException($"TrainingCompleted names job {completed.JobId}, which does not exist.");
        if (job.State is JobState.Rejected or JobState.Failed or JobState.Cancelled)
        {
            return;
        }

        var report = FineTuneReport.FromJson(completed.Metrics.ToJsonString());
        var spec = PipelineSpec.Parse(job.Spec, $"job {job.JobId} spec");
        var perplexity = new Dictionary<string, double?>
        {
            ["candidate"] = report.Candidate.Perplexity,
            ["base"] = report.Base.Perplexity,
            ["scratch"] = report.Scratch?.Perplexity,
            ["champion"] = report.Champion?.Perplexity,
        };

        var reasons = PublishGate.Reasons(spec.Gate, report);

        var now = bus.Clock.GetUtcNow();
        await jobs.UpdateAsync(job.JobId, j => j.State == JobState.Running
            ? j.MoveTo(JobState.Completed, now, "trained and evaluated") with { Metrics = completed.Metrics, Execution = null }
            : null, cancellationToken);

        if (reasons.Count > 0 && job.State != JobState.Published)
        {
            var joined = string.Join("; ", reasons);
            await jobs.UpdateAsync(job.JobId, j => j.State == JobState.Completed
                ? j.MoveTo(JobState.Rejected, now, "gate not passed") with { Error = joined }
                : null, cancellationToken);
            await bus.PublishAsync(Entities.ModelEvents, new ModelRejected(job.Model, job.JobId, reasons, perplexity),
                PipelineBus.StableId(job.JobId, nameof(ModelRejected)), Source, cancellationToken);
            logger.Rejected(job.JobId, job.Model, joined);
            return;
        }

        var lineage = new JsonObject
        {
            ["job"] = job.JobId,
            ["trigger"] = job.Trigger,
            ["base_model"] = spec.BaseModel,
            ["dataset"] = new JsonArray([.. job.Dataset.Select(f => (JsonNode)new JsonObject { ["name"] = f.Name, ["sha256"] = f.Sha256, ["length"] = f.Length })]),
            ["dataset_hash"] = job.DatasetHash,
            ["spec"] = job.Spec.DeepClone(),
        };
        var published = await registry.PublishAsync(job.Model, job.JobId, completed.CandidatePath, report.Candidate.Perplexity, lineage,
            ModelCard.Render(job, spec, report), report.SampleFiles, cancellationToken);
        await jobs.UpdateAsync(job.JobId, j => j.State == JobState.Completed
            ? j.MoveTo(JobState.Published, now, $"version {published.Version}") with { Version = published.Version }
            : null, cancellationToken);
        await bus.PublishAsync(Entities.ModelEvents,
            new ModelPublished(job.Model, published.Version, job.JobId, $"{Containers.Registry}/{job.Model}/{published.Version}/", published.Files, perplexity, published.Aliases),
            PipelineBus.StableId(job.JobId, nameof(ModelPublished)), Source, cancellationToken);
        logger.Published(job.JobId, job.Model, published.Version);
    }

    private async Task FailedAsync(TrainingFailed failed, CancellationToken cancellationToken)
    {
        var found = await jobs.GetAsync(failed.JobId, cancellationToken);
        if (found is not { } current || JobStates.IsTerminal(current.Job.State) || current.Job.State == JobState.Completed)
        {
            return;
        }

        if (failed.Environmental && !current.Job.CancelRequested)
        {
            // Nothing is wrong with the job: it waits for the environment, its checkpoint kept, no attempt spent.
            if (current.Job.State is (JobState.Running or JobState.Dispatched) && current.Job.Execution is not null)
            {
                logger.TrainingFailed(failed.JobId, current.Job.Attempts, failed.Retryable, failed.Error);
                await waits.WaitAsync(failed.JobId, failed.Error, failed.RetryAfterSeconds is { } s ? TimeSpan.FromSeconds(s) : null, cancellationToken: cancellationToken);
            }

            return;
        }

        var spec = PipelineSpec.Parse(current.Job.Spec, $"job {failed.JobId} spec");
        var now = bus.Clock.GetUtcNow();
        var retry = false;
        var job = await jobs.UpdateAsync(failed.JobId, j =>
        {
            // Crashes are counted against maxAttempts; waits for the environment are not, and a retry on request starts again.
            retry = failed.Retryable && j.Crashes + 1 < spec.MaxAttempts && !j.CancelRequested;
            // Only a live run can fail; a job already waiting for its retry ignores a second report of the same failure.
            if (j.State is not (JobState.Running or JobState.Dispatched or JobState.Waiting) || j.Execution is null)
            {
                retry = false;
                return null;
            }

            var counted = j with { Execution = null, Error = failed.Error, Crashes = j.Crashes + (failed.Retryable ? 1 : 0) };
            return retry
                ? counted.MoveTo(JobState.Dispatched, now, $"attempt {j.Attempts} failed, retrying: {failed.Error}")
                : counted.MoveTo(JobState.Failed, now, failed.Error);
        }, cancellationToken);
        logger.TrainingFailed(failed.JobId, job.Attempts, failed.Retryable, failed.Error);
        if (retry)
        {
            var backoff = options.RetryBackoff * Math.Pow(2, Math.Min(30, Math.Max(0, job.Crashes - 1)));
            var delay = backoff < options.MaxRetryBackoff ? backoff : options.MaxRetryBackoff;
            await bus.RequestAsync(new FineTuneRequested(job.Model, "retry", job.TriggerKey, JobId: job.JobId),
                PipelineBus.StableId(job.JobId, "retry", job.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture)), now + delay, cancellationToken);
        }
    }
}

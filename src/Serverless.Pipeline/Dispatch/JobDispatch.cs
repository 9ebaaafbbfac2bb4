using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Dispatch;

/// <summary>
/// Dispatch: starts a trainer for a prepared job and records it — never holding a message lock while training runs.
/// At most <see cref="PipelineOptions.MaxConcurrentJobs"/> trainers run at once; a job that finds none free sends
/// itself a scheduled request and tries again later, so none is lost.
/// </summary>
public sealed class JobDispatch(JobStore jobs, IJobDispatcher dispatcher, PipelineBus bus, PipelineOptions options, ILogger<JobDispatch> logger)
{
    private const string Starting = "starting";

    /// <summary>Starts the job's trainer if a slot is free and nobody else started it; returns whether this call started it.</summary>
    public async Task<bool> TryDispatchAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var running = await dispatcher.CountRunningAsync(cancellationToken);
        if (running >= options.MaxConcurrentJobs)
        {
            logger.JobWaits(jobId, running, options.MaxConcurrentJobs);
            var job = (await jobs.GetAsync(jobId, cancellationToken))!.Value.Job;
            var wait = PipelineBus.StableId(jobId, "wait", bus.Clock.GetUtcNow().ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
            await bus.RequestAsync(new FineTuneRequested(job.Model, "dispatch", job.TriggerKey, JobId: jobId), wait, bus.Clock.GetUtcNow() + options.DispatchRetryDelay, cancellationToken);
            return false;
        }

        var claimed = false;
        var updated = await jobs.UpdateAsync(jobId, job =>
        {
            claimed = false;
            if (job.Execution is not null || job.State is not (JobState.Preparing or JobState.Dispatched) || job.CancelRequested)
            {
                return null;
            }

            claimed = true;
            var moved = job.State == JobState.Dispatched ? job : job.MoveTo(JobState.Dispatched, bus.Clock.GetUtcNow(), "trainer starting");
            return moved with { Execution = Starting, Attempts = job.Attempts + 1 };
        }, cancellationToken);
        if (!claimed)
        {
            return false;
        }

        var execution = await dispatcher.StartAsync(jobId, cancellationToken);
        await jobs.UpdateAsync(jobId, job => job.Execution == Starting ? job with { Execution = execution } : null, cancellationToken);
        logger.JobDispatched(jobId, execution, updated.Attempts);
        return true;
    }
}

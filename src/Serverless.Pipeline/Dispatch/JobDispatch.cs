using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Dispatch;

/// <summary>
/// Dispatch: starts a trainer for a prepared job and records it — never holding a message lock while training runs.
/// At most <see cref="PipelineOptions.MaxConcurrentJobs"/> trainers run at once; a job that finds none free sends
/// itself a scheduled request and tries again later, so none is lost. A slot is claimed in the job document
/// (<c>starting@{time}</c>) before the trainer is started; a claim whose host died before the trainer reached
/// <c>running</c> is taken over after <see cref="PipelineOptions.StartTimeout"/>, so a crash there loses nothing.
/// </summary>
public sealed class JobDispatch(JobStore jobs, IJobDispatcher dispatcher, PipelineBus bus, PipelineOptions options, EnvironmentWait waits, ILogger<JobDispatch> logger)
{
    private const string Starting = "starting@";

    /// <summary>Whether <paramref name="execution"/> is a claim (a trainer being started) rather than a started run.</summary>
    public static bool IsClaim(string execution) => execution?.StartsWith(Starting, StringComparison.Ordinal) ?? false;

    /// <summary>Whether <paramref name="job"/> holds a trainer claim that was never followed by a running trainer and is older than the start timeout.</summary>
    public bool IsStaleClaim(JobDocument job, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.State == JobState.Dispatched && job.Execution is { } execution && IsClaim(execution)
            && DateTimeOffset.TryParse(execution[Starting.Length..], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var since)
            && now - since >= options.StartTimeout;
    }

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
        var now = bus.Clock.GetUtcNow();
        var claim = Starting + now.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        var updated = await jobs.UpdateAsync(jobId, job =>
        {
            claimed = false;
            var free = job.Execution is null || IsStaleClaim(job, now);
            if (!free || job.State is not (JobState.Preparing or JobState.Dispatched or JobState.Waiting) || job.CancelRequested)
            {
                return null;
            }

            claimed = true;
            var takeover = job.State == JobState.Dispatched && job.Execution is not null;
            var moved = job.State == JobState.Dispatched
                ? takeover ? job.MoveTo(JobState.Dispatched, now, "taking over the trainer claim of a host that stopped before recording its run") : job
                : job.MoveTo(JobState.Dispatched, now, job.State == JobState.Waiting ? "trying again after waiting for the environment" : "trainer starting");
            // A takeover continues the attempt whose start was never recorded (the dispatcher adopts its run if it exists).
            return moved with { Execution = claim, Attempts = takeover ? job.Attempts : job.Attempts + 1 };
        }, cancellationToken);
        if (!claimed)
        {
            if (updated.State == JobState.Dispatched && updated.Execution is { } held && IsClaim(held))
            {
                // Someone's claim, not yet followed by a trainer: look again when it would be stale.
                var check = PipelineBus.StableId(jobId, "claim", held);
                await bus.RequestAsync(new FineTuneRequested(updated.Model, "dispatch", updated.TriggerKey, JobId: jobId), check, now + options.StartTimeout, cancellationToken);
            }

            return false;
        }

        string execution;
        try
        {
            execution = await dispatcher.StartAsync(jobId, updated.Attempts, cancellationToken);
        }
        catch (EnvironmentUnavailableException e)
        {
            // No capacity or quota for a trainer now: the job waits (the claim is released) and tries again later.
            logger.JobWaitsForEnvironment(jobId, e.Message);
            await waits.WaitAsync(jobId, e.Message, e.RetryAfter, cancellationToken: cancellationToken);
            return false;
        }

        await jobs.UpdateAsync(jobId, job => job.Execution == claim ? job with { Execution = execution } : null, cancellationToken);
        logger.JobDispatched(jobId, execution, updated.Attempts);
        return true;
    }
}

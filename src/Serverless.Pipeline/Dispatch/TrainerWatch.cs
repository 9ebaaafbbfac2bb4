using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Dispatch;

/// <summary>
/// The trainer watch: a job whose trainer run the dispatcher reports failed, or does not know and that has shown no
/// sign of life (progress, state change) for <see cref="PipelineOptions.HeartbeatTimeout"/>, is reported as a
/// retryable <c>TrainingFailed</c>, so Publish resumes it from its checkpoint. Catches what no exit callback can: a
/// host that died with its trainers, an execution that vanished. Runs in every host that can see trainers: the
/// embedded host, the Azure worker while it is up, and the Functions app's timer while the worker sleeps.
/// </summary>
public sealed class TrainerWatch(JobStore jobs, IJobDispatcher dispatcher, PipelineBus bus, PipelineOptions options, EnvironmentWait waits, ILogger<TrainerWatch> logger)
{
    /// <summary>The trainer's exit code when it failed and published <c>TrainingFailed</c> itself.</summary>
    public const int ReportedFailureExitCode = 2;

    /// <summary>One round over the live jobs; returns the jobs reported.</summary>
    public async Task<IReadOnlyList<string>> WatchAsync(CancellationToken cancellationToken = default)
    {
        var reported = new List<string>();
        var now = bus.Clock.GetUtcNow();
        await foreach (var job in jobs.ListActiveAsync(cancellationToken))
        {
            // A wait whose next try is long overdue (its scheduled request was lost with a host): ask again.
            if (job.State == JobState.Waiting && job.Execution is null && job.Wait?.NextTryAt is { } due && now - due > 2 * options.WatchInterval)
            {
                await bus.RequestAsync(new FineTuneRequested(job.Model, "retry", job.TriggerKey, JobId: job.JobId),
                    PipelineBus.StableId(job.JobId, "overdue", due.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture)), cancellationToken: cancellationToken);
                continue;
            }

            if (job.State is not (JobState.Dispatched or JobState.Running or JobState.Waiting) || job.Execution is not { } execution || JobDispatch.IsClaim(execution))
            {
                continue;
            }

            var status = await dispatcher.GetStatusAsync(execution, cancellationToken);
            var lastSign = new[] { job.Progress?.At ?? DateTimeOffset.MinValue, job.History.Count > 0 ? job.History[^1].At : job.CreatedAt }.Max();
            // Runs that ended before their trainer started three times in a row are not the environment but the run
            // itself (an image that cannot start, a bad setting): from then on they count as crashes, against maxAttempts.
            var neverStarted = "ended before its trainer started";
            var startsFailing = job.Wait is { Tries: >= 3 } w3 && w3.Reason.Contains(neverStarted, StringComparison.Ordinal);
            if (job.State is JobState.Dispatched or JobState.Waiting && !job.CancelRequested && !startsFailing)
            {
                // The run was started but its trainer never reported running: the environment has not scheduled it (no
                // GPU capacity or quota), or could not (it failed before the trainer started). Either way the job waits:
                // for the same run while it is pending, for a new one after it failed.
                var pendingFor = now - (job.State == JobState.Waiting && job.Wait is { } w ? w.Since : lastSign);
                if (status is ExecutionStatus.Failed or ExecutionStatus.Unknown && (job.State == JobState.Waiting || status == ExecutionStatus.Failed))
                {
                    await waits.WaitAsync(job.JobId, $"the trainer run {execution} {neverStarted} (no capacity for its container, or it could not start: see the run's logs)", cancellationToken: cancellationToken);
                    reported.Add(job.JobId);
                    continue;
                }

                if (job.State == JobState.Dispatched && status == ExecutionStatus.Running && pendingFor >= options.PendingNotice)
                {
                    await waits.WaitAsync(job.JobId, $"the trainer run {execution} has not started after {pendingFor.TotalMinutes:F0} min: the environment has no capacity for it yet",
                        pendingExecution: execution, cancellationToken: cancellationToken);
                    reported.Add(job.JobId);
                    continue;
                }

                if (job.State == JobState.Waiting)
                {
                    if (now - job.Wait!.Since >= options.WaitHorizon)
                    {
                        await dispatcher.CancelAsync(execution, cancellationToken);
                        await waits.WaitAsync(job.JobId, job.Wait.Reason, pendingExecution: execution, cancellationToken: cancellationToken);   // past the horizon: fails
                    }

                    continue;
                }
            }

            var reason = status switch
            {
                ExecutionStatus.Failed => $"the trainer run {execution} failed",
                ExecutionStatus.Unknown when now - lastSign >= options.HeartbeatTimeout =>
                    $"no sign of life from trainer run {execution} for {(now - lastSign).TotalMinutes:F1} min, and its dispatcher does not know it",
                _ => null,
            };
            if (reason is not null && await ReportLostAsync(job.JobId, execution, reason, reportedItself: false))
            {
                logger.TrainerLost(job.JobId, reason);
                reported.Add(job.JobId);
            }
        }

        return reported;
    }

    /// <summary>
    /// Runs <see cref="WatchAsync"/> every <see cref="PipelineOptions.WatchInterval"/> until cancelled. A round that
    /// fails — storage, the broker or ARM failing past their retries, an unreadable job document — is logged and the
    /// next round tries again: the watch never stops early.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.WatchInterval, bus.Clock, cancellationToken);
                await WatchAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                logger.TrainerWatchFailed(e);
            }
        }
    }

    /// <summary>
    /// Reports a trainer that exited with an error without publishing TrainingFailed (killed, crashed). One the kernel
    /// killed for memory (<paramref name="outOfMemory"/>) is reported as such, with its step and the trainer's estimate,
    /// and the job waits rather than spending a crash attempt.
    /// </summary>
    public async Task TrainerExitedAsync(string jobId, int exitCode, bool outOfMemory = false)
    {
        if (!outOfMemory)
        {
            await ReportLostAsync(jobId, null, $"the trainer exited with code {exitCode}", exitCode == ReportedFailureExitCode);
            return;
        }

        var job = (await jobs.GetAsync(jobId))?.Job;
        var step = job?.Progress is { } p ? $" at {p.Phase} step {p.Step}" : " before its first step";
        var budget = job?.Memory is { } m ? $"; estimated {Model.Training.DiskSpace.Format(m.EstimatedBytes)}, limit {Model.Training.DiskSpace.Format(m.LimitBytes)}" : "";
        await ReportLostAsync(jobId, null, $"the trainer was killed for memory (out of memory, exit code {exitCode}){step}{budget}", reportedItself: false, environmental: true);
    }

    private async Task<bool> ReportLostAsync(string jobId, string? execution, string reason, bool reportedItself, bool environmental = false)
    {
        var found = await jobs.GetAsync(jobId);
        if (reportedItself || found is not { } current || current.Job.State is not (JobState.Dispatched or JobState.Running or JobState.Waiting)
            || current.Job.Execution is null || (execution is not null && current.Job.Execution != execution))
        {
            return false;
        }

        await bus.PublishAsync(Entities.TrainingEvents,
            new TrainingFailed(current.Job.Model, jobId, reason, Retryable: true, Environmental: environmental),
            PipelineBus.StableId(jobId, nameof(TrainingFailed), current.Job.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            "/serverless/dispatch");
        return true;
    }
}

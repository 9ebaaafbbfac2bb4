using System.Globalization;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Dispatch;

/// <summary>
/// What a job does when the environment runs out (disk full, no GPU capacity or quota, storage busy, killed for
/// memory): it goes to <see cref="JobState.Waiting"/> with the reason and the next try time, a retry request is
/// scheduled for then (backing off from <see cref="PipelineOptions.WaitBackoff"/>, or when the environment said), and
/// a <see cref="JobWaiting"/> event tells subscribers. No crash attempt is spent. Past
/// <see cref="PipelineOptions.WaitHorizon"/> of waiting the job fails for good (<c>tune retry</c> can still run it).
/// </summary>
public sealed class EnvironmentWait(JobStore jobs, PipelineBus bus, PipelineOptions options)
{
    private const string Source = "/serverless/dispatch";

    /// <summary>
    /// Moves a live job (<c>dispatched</c>, <c>running</c> or already <c>waiting</c>) to wait for <paramref name="reason"/>;
    /// <paramref name="pendingExecution"/> keeps a started run the environment has not scheduled yet (no new run is
    /// then requested: the job resumes when that one starts). Returns the job, or null when it was not live.
    /// </summary>
    public async Task<JobDocument?> WaitAsync(string jobId, string reason, TimeSpan? retryAfter = null, string? pendingExecution = null, CancellationToken cancellationToken = default)
    {
        var now = bus.Clock.GetUtcNow();
        var moved = false;
        var job = await jobs.UpdateAsync(jobId, j =>
        {
            moved = false;
            if (j.State is not (JobState.Dispatched or JobState.Running or JobState.Waiting) || j.CancelRequested)
            {
                return null;
            }

            // One stretch of waiting lasts until the job gets further than where it began: tries that fail at the
            // same point (a resume that re-runs a few steps and fails again) continue it, so the backoff grows and
            // the horizon counts from its start; only real progress starts a new stretch.
            var here = Position(j);
            var last = j.Wait is { } previous && !Beyond(here, previous.AtStep) ? previous : null;
            var since = last?.Since ?? now;
            var tries = (last?.Tries ?? 0) + 1;
            if (now - since >= options.WaitHorizon)
            {
                moved = true;
                var gaveUp = $"gave up after waiting {Describe(now - since)} for the environment: {reason} (run `tune retry {jobId}` once it has recovered)";
                return j.MoveTo(JobState.Failed, now, gaveUp) with { Execution = null, Error = gaveUp, Wait = j.Wait };
            }

            var next = pendingExecution is null ? now + options.WaitFor(tries, retryAfter) : (DateTimeOffset?)null;
            var wait = new JobWait(reason, since, next, tries, last?.AtStep ?? here);
            moved = true;
            var note = next is { } at ? $"waiting for the environment until {at:u}: {reason}" : $"waiting for the environment to start run {pendingExecution}: {reason}";
            var waiting = j.State == JobState.Waiting ? j with { History = [.. j.History, new JobTransition(JobState.Waiting, now, note)] } : j.MoveTo(JobState.Waiting, now, note);
            return waiting with { Wait = wait, Error = reason, Execution = pendingExecution };
        }, cancellationToken);
        if (!moved)
        {
            return null;
        }

        if (job.State == JobState.Waiting)
        {
            var wait = job.Wait!;
            if (wait.NextTryAt is { } at)
            {
                await bus.RequestAsync(new FineTuneRequested(job.Model, "retry", job.TriggerKey, JobId: job.JobId),
                    PipelineBus.StableId(job.JobId, "wait", wait.Since.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), wait.Tries.ToString(CultureInfo.InvariantCulture)), at, cancellationToken);
            }

            await bus.PublishAsync(Entities.ModelEvents, new JobWaiting(job.Model, job.JobId, wait.Reason, wait.NextTryAt, wait.Since + options.WaitHorizon),
                PipelineBus.StableId(job.JobId, nameof(JobWaiting), wait.Since.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), wait.Tries.ToString(CultureInfo.InvariantCulture)),
                Source, cancellationToken);
        }

        return job;
    }

    /// <summary>Where training is: the phase's index among the job's phases is not known here, so phase name and step.</summary>
    private static string? Position(JobDocument job) => job.Progress is { } p ? $"{p.Phase}:{p.Step}" : null;

    /// <summary>Whether <paramref name="now"/> is past <paramref name="then"/> (a later step of the same phase, or another phase).</summary>
    private static bool Beyond(string? now, string? then)
    {
        if (now is null)
        {
            return false;
        }

        if (then is null)
        {
            return true;
        }

        var (a, b) = (now.Split(':'), then.Split(':'));
        return a[0] != b[0] || int.Parse(a[1], CultureInfo.InvariantCulture) > int.Parse(b[1], CultureInfo.InvariantCulture);
    }

    private static string Describe(TimeSpan span) =>
        span.TotalHours >= 1 ? $"{span.TotalHours:0.#} h" : span.TotalMinutes >= 1 ? $"{span.TotalMinutes:0.#} min" : $"{span.TotalSeconds:0} s";
}

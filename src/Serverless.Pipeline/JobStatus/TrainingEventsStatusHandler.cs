using Serverless.Core.Contracts;
using Serverless.Core.Jobs;

namespace Serverless.Pipeline.JobStatus;

/// <summary>
/// Job status (subscription <c>training-events/status</c>): keeps the job document's latest progress and running
/// state current. It only ever moves a job forward: an event that arrives late changes nothing.
/// </summary>
public sealed class TrainingEventsStatusHandler(JobStore jobs, TimeProvider clock)
{
    /// <summary>Handles one training event.</summary>
    public async Task HandleAsync(CloudEvent e, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        switch (e.Type)
        {
            case nameof(TrainingStarted):
                var started = e.DataAs<TrainingStarted>();
                await Update(started.JobId, j => j.State == JobState.Dispatched || (j.State == JobState.Waiting && j.Execution is not null)
                    ? j.MoveTo(JobState.Running, clock.GetUtcNow(), $"attempt {started.Attempt}") with { Memory = started.Memory ?? j.Memory }
                    : null, cancellationToken);
                break;
            case nameof(TrainingProgress):
                var p = e.DataAs<TrainingProgress>();
                await Update(p.JobId, j => j.State == JobState.Running && (j.Progress is null || j.Progress.At <= e.Time)
                    ? j with { Progress = new JobProgress(p.Phase, p.Step, p.TotalSteps, p.Loss, p.TokensPerSecond, p.EtaSeconds, e.Time) }
                    : null, cancellationToken);
                break;
            case nameof(TrainingFailed):
                var failed = e.DataAs<TrainingFailed>();
                await Update(failed.JobId, j => JobStates.IsTerminal(j.State) ? null : j with { Error = failed.Error }, cancellationToken);
                break;
        }
    }

    private async Task Update(string jobId, Func<JobDocument, JobDocument?> change, CancellationToken cancellationToken)
    {
        if (await jobs.GetAsync(jobId, cancellationToken) is not null)
        {
            await jobs.UpdateAsync(jobId, change, cancellationToken);
        }
    }
}

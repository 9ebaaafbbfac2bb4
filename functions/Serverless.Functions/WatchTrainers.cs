using Microsoft.Azure.Functions.Worker;
using Serverless.Pipeline.Dispatch;

namespace Serverless.Functions;

/// <summary>
/// The trainer watch, every minute (the worker runs it too, but scales to zero between messages): a trainer execution
/// that failed or vanished without publishing anything — out of memory, a lost node — is reported as a retryable
/// <c>TrainingFailed</c>, which wakes the worker to resume the job from its checkpoint. Reads only the live jobs.
/// </summary>
public sealed class WatchTrainers(TrainerWatch watch)
{
    /// <summary>Looks at every running job's execution.</summary>
    [Function(nameof(WatchTrainers))]
    public Task RunAsync([TimerTrigger("30 * * * * *")] TimerInfo timer, CancellationToken cancellationToken) => watch.WatchAsync(cancellationToken);
}

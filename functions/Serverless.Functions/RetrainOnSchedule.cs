using Microsoft.Azure.Functions.Worker;
using Serverless.Pipeline.Schedule;

namespace Serverless.Functions;

/// <summary>Schedule: every minute, request retraining for models whose retrain.cron is due.</summary>
public sealed class RetrainOnSchedule(RetrainOnScheduleHandler schedule, TimeProvider clock)
{
    /// <summary>Checks every model's schedule.</summary>
    [Function(nameof(RetrainOnSchedule))]
    public Task RunAsync([TimerTrigger("0 * * * * *")] TimerInfo timer, CancellationToken cancellationToken) =>
        schedule.HandleAsync(clock.GetUtcNow(), cancellationToken);
}

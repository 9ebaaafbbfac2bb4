using Microsoft.Azure.Functions.Worker;
using Serverless.Pipeline.Hosting;

namespace Serverless.Functions;

/// <summary>Schedule: every minute, request retraining for models whose retrain.cron is due.</summary>
public sealed class RetrainOnSchedule(PipelineRuntime pipeline)
{
    /// <summary>Checks every model's schedule.</summary>
    [Function(nameof(RetrainOnSchedule))]
    public Task RunAsync([TimerTrigger("0 * * * * *")] TimerInfo timer, CancellationToken cancellationToken) =>
        pipeline.Schedule.HandleAsync(pipeline.Clock.GetUtcNow(), cancellationToken);
}

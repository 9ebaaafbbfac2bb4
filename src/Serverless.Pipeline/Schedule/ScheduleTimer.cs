using Microsoft.Extensions.Logging;

namespace Serverless.Pipeline.Schedule;

/// <summary>
/// The embedded host's timer for <see cref="RetrainOnScheduleHandler"/>: just after every minute, as the Functions
/// app's TimerTrigger does in Azure. A round that fails is logged and tried again five seconds later.
/// </summary>
public sealed class ScheduleTimer(RetrainOnScheduleHandler schedule, TimeProvider clock, ILogger<ScheduleTimer> logger)
{
    /// <summary>Runs until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using (PipelineTracing.Schedule.StartActivity("RetrainOnSchedule"))
                {
                    await schedule.HandleAsync(clock.GetUtcNow(), cancellationToken);
                }

                var now = clock.GetUtcNow();
                var nextMinute = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, TimeSpan.Zero).AddMinutes(1);
                await Task.Delay(nextMinute - now + TimeSpan.FromMilliseconds(50), clock, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                logger.ScheduleFailed(e);
                await Task.Delay(TimeSpan.FromSeconds(5), clock, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }
}

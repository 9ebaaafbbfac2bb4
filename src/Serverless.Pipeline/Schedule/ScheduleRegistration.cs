using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Pipeline.Schedule;

/// <summary>Registers the Schedule stage.</summary>
public static class ScheduleRegistration
{
    /// <summary>Schedule: due <c>retrain.cron</c> occurrences become requests (<see cref="RetrainOnScheduleHandler"/>, and the embedded host's <see cref="ScheduleTimer"/>).</summary>
    public static IServiceCollection AddSchedule(this IServiceCollection services) =>
        services.AddSingleton<RetrainOnScheduleHandler>().AddSingleton<ScheduleTimer>();
}

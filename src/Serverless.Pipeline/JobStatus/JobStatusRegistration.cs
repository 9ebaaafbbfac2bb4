using Microsoft.Extensions.DependencyInjection;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.JobStatus;

/// <summary>Registers the job-status stage.</summary>
public static class JobStatusRegistration
{
    /// <summary>Job status on every training event (<see cref="TrainingEventsStatusHandler"/>).</summary>
    public static IServiceCollection AddJobStatus(this IServiceCollection services)
    {
        services.AddSingleton<TrainingEventsStatusHandler>();
        return services.AddSingleton(sp => new StageBinding(StageEntities.JobStatus, sp.GetRequiredService<TrainingEventsStatusHandler>().HandleAsync));
    }
}

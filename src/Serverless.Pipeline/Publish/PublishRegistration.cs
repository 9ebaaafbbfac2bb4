using Microsoft.Extensions.DependencyInjection;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Publish;

/// <summary>Registers the Publish stage.</summary>
public static class PublishRegistration
{
    /// <summary>Publish on the training events that end a run (<see cref="TrainingEventsPublisherHandler"/>).</summary>
    public static IServiceCollection AddPublish(this IServiceCollection services)
    {
        services.AddSingleton<TrainingEventsPublisherHandler>();
        return services.AddSingleton(sp => new StageBinding(StageEntities.Publish, sp.GetRequiredService<TrainingEventsPublisherHandler>().HandleAsync));
    }
}

using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Serverless.Core.Jobs;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Hosting;

/// <summary>Registers what every stage shares. A host adds its ports, this, then the stages it runs (<c>AddIngest()</c>, <c>AddPrepare()</c> …).</summary>
public static class PipelineCoreRegistration
{
    /// <summary>
    /// The options (validated here, so a host with settings that cannot work fails at start), the bus with the
    /// pipeline's conventions, job documents, local copies of blobs, specs, the model registry, model resolution, the
    /// wait for the environment and the retention sweep.
    /// Needs <see cref="IBlobStore"/>, <see cref="IMessageBus"/> and logging (every host has it); uses the registered
    /// <see cref="TimeProvider"/>, else the system clock.
    /// </summary>
    public static IServiceCollection AddPipelineCore(this IServiceCollection services, PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        services.AddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new PipelineBus(sp.GetRequiredService<IMessageBus>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<JobStore>();
        services.TryAddSingleton<LocalFiles>();
        services.TryAddSingleton<SpecReader>();
        services.TryAddSingleton<ModelRegistry>();
        services.TryAddSingleton<ModelResolver>();
        services.TryAddSingleton<Dispatch.EnvironmentWait>();
        services.TryAddSingleton<Retention.RetentionSweep>();
        return services;
    }
}

using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Contracts;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Prepare;

/// <summary>Registers the Prepare + Dispatch stage.</summary>
public static class PrepareRegistration
{
    /// <summary>
    /// Prepare + Dispatch on the requests queue (<see cref="FineTuneRequestedHandler"/>, <see cref="JobDispatch"/>).
    /// Needs an <see cref="Core.Ports.IJobDispatcher"/>.
    /// </summary>
    public static IServiceCollection AddPrepare(this IServiceCollection services)
    {
        services.AddSingleton<JobDispatch>();
        services.AddSingleton<FineTuneRequestedHandler>();
        return services.AddSingleton(sp => new StageBinding(StageEntities.Prepare,
            (e, ct) => sp.GetRequiredService<FineTuneRequestedHandler>().HandleAsync(e.DataAs<FineTuneRequested>(), ct)));
    }
}

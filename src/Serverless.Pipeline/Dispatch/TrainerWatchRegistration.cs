using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Pipeline.Dispatch;

/// <summary>Registers the trainer watch.</summary>
public static class TrainerWatchRegistration
{
    /// <summary>The trainer watch (<see cref="TrainerWatch"/>). Needs an <see cref="Core.Ports.IJobDispatcher"/> that can read run status.</summary>
    public static IServiceCollection AddTrainerWatch(this IServiceCollection services) => services.AddSingleton<TrainerWatch>();
}

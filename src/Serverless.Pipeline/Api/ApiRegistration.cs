using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Pipeline.Api;

/// <summary>Registers the HTTP API's logic.</summary>
public static class ApiRegistration
{
    /// <summary>The operations behind the HTTP API (<see cref="PipelineApi"/>), whichever host serves them.</summary>
    public static IServiceCollection AddPipelineApi(this IServiceCollection services) => services.AddSingleton<PipelineApi>();
}

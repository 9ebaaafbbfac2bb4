using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Azure;
using Serverless.Core.Ports;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;

namespace Serverless.Functions;

/// <summary>Wiring of the Functions app: the Azure ports and the stages over them.</summary>
public static class PipelineFunctionsExtensions
{
    /// <summary>Registers the Azure ports and a <see cref="PipelineRuntime"/>.</summary>
    public static IHostApplicationBuilder AddPipelineFunctions(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        HostSettings.RequireUnlessEmulated("Functions app", HostSettings.Functions, builder.Configuration);
        builder.Services.AddPipelineAzure(builder.Configuration);
        builder.Services.AddPipelineTelemetry(builder.Configuration, "tune-functions");
        builder.Services.AddSingleton(sp => new PipelineRuntime(
            sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IMessageBus>(),
            sp.GetService<IJobDispatcher>() ?? new NoDispatch(), sp.GetRequiredService<TimeProvider>(),
            new PipelineOptions { WorkDirectory = Path.Combine(Path.GetTempPath(), "tune-functions") },
            sp.GetRequiredService<ILoggerFactory>()));
        return builder;
    }

    /// <summary>The Functions app runs Ingest, Schedule and the API, which never dispatch: Dispatch lives in the worker.</summary>
    private sealed class NoDispatch : IJobDispatcher
    {
        private static InvalidOperationException NotHere() => new("Dispatch runs in the Service Bus worker, not in the Functions app.");

        public Task<string> StartAsync(string jobId, CancellationToken cancellationToken = default) => throw NotHere();

        public Task CancelAsync(string execution, CancellationToken cancellationToken = default) => throw NotHere();

        public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) => throw NotHere();

        public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => throw NotHere();
    }
}

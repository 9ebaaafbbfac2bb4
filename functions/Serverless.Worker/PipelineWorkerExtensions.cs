using Serverless.Azure;
using Serverless.Core.Ports;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;

namespace Serverless.Worker;

/// <summary>Wiring of the Service Bus worker: the Azure ports, the stages, and their consumers.</summary>
public static class PipelineWorkerExtensions
{
    /// <summary>Registers everything the worker runs.</summary>
    public static IHostApplicationBuilder AddPipelineWorker(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        HostSettings.RequireUnlessEmulated("Service Bus worker", HostSettings.Worker, builder.Configuration);
        builder.Services.AddPipelineAzure(builder.Configuration);
        builder.Services.AddPipelineTelemetry(builder.Configuration, "tune-worker");
        builder.Services.AddSingleton(sp => new PipelineRuntime(
            sp.GetRequiredService<IBlobStore>(), sp.GetRequiredService<IMessageBus>(), sp.GetRequiredService<IJobDispatcher>(),
            sp.GetRequiredService<TimeProvider>(),
            new PipelineOptions
            {
                WorkDirectory = Path.Combine(Path.GetTempPath(), "tune-worker"),
                MaxConcurrentJobs = builder.Configuration.GetValue("Pipeline:MaxConcurrentJobs", 4),
            },
            sp.GetRequiredService<ILoggerFactory>()));
        builder.Services.AddSingleton<StageConsumers>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StageConsumers>());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
        return builder;
    }
}

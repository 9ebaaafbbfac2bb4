using Serverless.Azure;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.JobStatus;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Publish;

namespace Serverless.Worker;

/// <summary>Wiring of the Service Bus worker: the Azure ports, the stages it hosts, and their consumers.</summary>
public static class PipelineWorkerExtensions
{
    /// <summary>Registers everything the worker runs: Prepare + Dispatch, Publish, job status and the trainer watch.</summary>
    public static IHostApplicationBuilder AddPipelineWorker(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        HostSettings.RequireUnlessEmulated("Service Bus worker", HostSettings.Worker, builder.Configuration);
        builder.Services.AddPipelineAzure(builder.Configuration);
        builder.Services.AddPipelineTelemetry(builder.Configuration, "tune-worker");
        builder.Services.AddPipelineCore(HostSettings.PipelineOptions(builder.Configuration, Path.Combine(Path.GetTempPath(), "tune-worker"), maxConcurrentJobs: 4))
            .AddPrepare().AddPublish().AddJobStatus().AddTrainerWatch();
        builder.Services.AddSingleton<StageConsumers>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StageConsumers>());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
        return builder;
    }
}

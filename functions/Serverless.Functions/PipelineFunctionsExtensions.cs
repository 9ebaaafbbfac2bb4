using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Serverless.Azure;
using Serverless.Core.Ports;
using Serverless.Pipeline.Api;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Ingest;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Schedule;

namespace Serverless.Functions;

/// <summary>Wiring of the Functions app: the Azure ports and the stages over them.</summary>
public static class PipelineFunctionsExtensions
{
    /// <summary>Registers the Azure ports and the stages this app hosts: Ingest, Schedule, the HTTP API and the trainer watch.</summary>
    public static IHostApplicationBuilder AddPipelineFunctions(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        HostSettings.RequireUnlessEmulated("Functions app", HostSettings.Functions, builder.Configuration);
        builder.Services.AddPipelineAzure(builder.Configuration);
        builder.Services.AddPipelineTelemetry(builder.Configuration, "tune-functions");
        builder.Services.TryAddSingleton<IJobDispatcher, NoDispatch>();
        builder.Services.AddPipelineCore(HostSettings.PipelineOptions(builder.Configuration, Path.Combine(Path.GetTempPath(), "tune-functions"), maxConcurrentJobs: 1))
            .AddIngest().AddSchedule().AddPipelineApi().AddTrainerWatch();
        return builder;
    }

    /// <summary>
    /// Without <c>Trainer:JobResourceId</c> (a local run on emulators): Ingest, Schedule and the API never dispatch
    /// (Dispatch lives in the worker), and the trainer watch says what is missing. In Azure the dispatcher is the
    /// trainer job's, used only to read executions (the app holds Reader on the job, not Operator).
    /// </summary>
    private sealed class NoDispatch : IJobDispatcher
    {
        private static InvalidOperationException NotHere() =>
            new("The Functions app has no trainer job (Trainer__JobResourceId is not set): it cannot watch trainers; Dispatch runs in the Service Bus worker.");

        public Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default) => throw NotHere();

        public Task CancelAsync(string execution, CancellationToken cancellationToken = default) => throw NotHere();

        public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) => throw NotHere();

        public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => throw NotHere();
    }
}

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

    /// <summary>
    /// Without <c>Trainer:JobResourceId</c> (a local run on emulators): Ingest, Schedule and the API never dispatch
    /// (Dispatch lives in the worker), and the trainer watch says what is missing. In Azure the dispatcher is the
    /// trainer job's, used only to read executions (the app holds Reader on the job, not Operator).
    /// </summary>
    private sealed class NoDispatch : IJobDispatcher
    {
        private static InvalidOperationException NotHere() =>
            new("The Functions app has no trainer job (Trainer__JobResourceId is not set): it cannot watch trainers; Dispatch runs in the Service Bus worker.");

        public Task<string> StartAsync(string jobId, CancellationToken cancellationToken = default) => throw NotHere();

        public Task CancelAsync(string execution, CancellationToken cancellationToken = default) => throw NotHere();

        public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) => throw NotHere();

        public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => throw NotHere();
    }
}

using Azure.Messaging.ServiceBus;
using Serverless.Azure.Hosting;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Hosting;

namespace Serverless.Worker;

/// <summary>
/// The worker's consumers — Prepare + Dispatch on <c>finetune-requests</c>, Publish on <c>training-events/publisher</c>,
/// job status on <c>training-events/status</c> — plus a watch that reports trainer executions that died without
/// saying so. Stopping lets in-flight messages finish (the host's shutdown timeout is 60 s).
/// </summary>
public sealed partial class StageConsumers(ServiceBusClient client, PipelineRuntime pipeline, IConfiguration configuration, ILogger<StageConsumers> logger) : BackgroundService
{
    private readonly List<ServiceBusStageProcessor> _processors = [];

    /// <summary>Whether every consumer started.</summary>
    public bool Healthy { get; private set; }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var concurrency = configuration.GetValue("Pipeline:MaxConcurrentCalls", 4);
        _processors.Add(new ServiceBusStageProcessor(client, Entities.FineTuneRequests,
            (e, ct) => pipeline.Prepare.HandleAsync(e.DataAs<FineTuneRequested>(), ct), concurrency, OnError));
        _processors.Add(new ServiceBusStageProcessor(client, Entities.Subscription(Entities.TrainingEvents, Entities.PublisherSubscription), pipeline.Publish.HandleAsync, concurrency, OnError));
        _processors.Add(new ServiceBusStageProcessor(client, Entities.Subscription(Entities.TrainingEvents, Entities.StatusSubscription), pipeline.Status.HandleAsync, concurrency, OnError));
        foreach (var processor in _processors)
        {
            await processor.StartAsync(stoppingToken);
        }

        Healthy = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(pipeline.Options.WatchInterval, stoppingToken);
                await pipeline.WatchTrainersAsync(stoppingToken);   // trainer executions that died without saying so
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception e) when (e is HttpRequestException or InvalidOperationException)
            {
                OnError(e);
            }
        }
    }

    /// <inheritdoc />
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        Healthy = false;
        foreach (var processor in _processors)
        {
            await processor.StopAsync(cancellationToken);
            await processor.DisposeAsync();
        }

        await base.StopAsync(cancellationToken);
    }

    private void OnError(Exception exception) => LogError(logger, exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "A stage consumer failed")]
    private static partial void LogError(ILogger logger, Exception exception);
}

using Azure.Messaging.ServiceBus;
using Serverless.Azure.Hosting;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Messaging;

namespace Serverless.Worker;

/// <summary>
/// The worker's consumers — one <see cref="ServiceBusStageProcessor"/> per bus-triggered stage registered in the
/// worker (<see cref="StageBinding"/>: Prepare + Dispatch, Publish, job status) — plus the trainer watch,
/// which reports trainer executions that died without saying so, and the retention sweep, which removes finished
/// jobs' shards and checkpoints after <c>Pipeline__Retention</c>. Stopping lets in-flight messages finish (the host's
/// shutdown timeout is 60 s, within the container's termination grace period).
/// </summary>
public sealed partial class StageConsumers(ServiceBusClient client, IEnumerable<StageBinding> stages, TrainerWatch watch, Serverless.Pipeline.Retention.RetentionSweep retention, PipelineOptions options,
    ILoggerFactory logging, IConfiguration configuration, ILogger<StageConsumers> logger) : BackgroundService
{
    private readonly List<ServiceBusStageProcessor> _processors = [];

    /// <summary>Whether every consumer started.</summary>
    public bool Healthy { get; private set; }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var concurrency = configuration.GetValue("Pipeline:MaxConcurrentCalls", 4);
        foreach (var stage in stages)
        {
            var processor = new ServiceBusStageProcessor(client, stage.Message(logging, options), concurrency, OnError);
            _processors.Add(processor);
            await processor.StartAsync(stoppingToken);
        }

        Healthy = true;
        await Task.WhenAll(watch.RunAsync(stoppingToken), retention.RunAsync(stoppingToken));
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

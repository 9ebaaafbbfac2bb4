using Azure.Messaging.ServiceBus;
using Serverless.Core.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Azure.Hosting;

/// <summary>
/// Runs one stage's handler on a queue or subscription with a <see cref="ServiceBusProcessor"/>: manual settlement
/// (complete on success, abandon on an exception so the broker redelivers and finally dead-letters, dead-letter at once
/// what is not a CloudEvent), automatic lock renewal while the handler runs, bounded concurrency, and a graceful stop
/// that lets in-flight messages finish.
/// </summary>
public sealed class ServiceBusStageProcessor : IAsyncDisposable
{
    private readonly ServiceBusProcessor _processor;

    /// <summary>Creates the processor for <paramref name="entity"/> (<c>queue</c> or <c>topic/subscriptions/name</c>).</summary>
    public ServiceBusStageProcessor(ServiceBusClient client, string entity, Func<CloudEvent, CancellationToken, Task> handler, int maxConcurrentCalls = 4, Action<Exception>? onError = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(handler);
        var options = new ServiceBusProcessorOptions
        {
            AutoCompleteMessages = false,
            MaxConcurrentCalls = maxConcurrentCalls,
            MaxAutoLockRenewalDuration = TimeSpan.FromHours(1),
            ReceiveMode = ServiceBusReceiveMode.PeekLock,
        };
        var marker = entity.IndexOf("/subscriptions/", StringComparison.Ordinal);
        _processor = marker < 0
            ? client.CreateProcessor(entity, options)
            : client.CreateProcessor(entity[..marker], entity[(marker + "/subscriptions/".Length)..], options);
        _processor.ProcessMessageAsync += args => HandleAsync(args, handler);
        _processor.ProcessErrorAsync += args =>
        {
            onError?.Invoke(args.Exception);
            return Task.CompletedTask;
        };
    }

    /// <summary>What one message goes through (public for tests, with the SDK's model factory).</summary>
    public static async Task HandleAsync(ProcessMessageEventArgs args, Func<CloudEvent, CancellationToken, Task> handler, int maxDeliveries = EntityOptions.DefaultMaxDeliveryCount)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(handler);
        CloudEvent cloudEvent;
        try
        {
            cloudEvent = CloudEvent.Parse(args.Message.Body.ToString());
        }
        catch (InvalidDataException e)
        {
            await args.DeadLetterMessageAsync(args.Message, DeadLetterReasons.InvalidEvent, e.Message, args.CancellationToken);
            return;
        }

        try
        {
            await handler(cloudEvent, args.CancellationToken);
        }
        catch (InvalidDataException e)
        {
            await args.DeadLetterMessageAsync(args.Message, DeadLetterReasons.InvalidEvent, e.Message, args.CancellationToken);
            return;
        }
        catch (Exception e) when (!args.CancellationToken.IsCancellationRequested)
        {
            if (args.Message.DeliveryCount >= maxDeliveries)
            {
                // The last delivery: dead-letter with the handler's reason rather than the broker's MaxDeliveryCountExceeded.
                await args.DeadLetterMessageAsync(args.Message, DeadLetterReasons.HandlerFailed, DeadLetterReasons.DescribeFailure(e, args.Message.DeliveryCount), CancellationToken.None);
            }
            else
            {
                await args.AbandonMessageAsync(args.Message, cancellationToken: CancellationToken.None);
            }

            throw;   // reported to ProcessErrorAsync
        }

        await args.CompleteMessageAsync(args.Message, args.CancellationToken);
    }

    /// <summary>Starts receiving.</summary>
    public Task StartAsync(CancellationToken cancellationToken) => _processor.StartProcessingAsync(cancellationToken);

    /// <summary>Stops receiving; in-flight handlers finish first.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _processor.StopProcessingAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _processor.DisposeAsync();
}

using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Messaging;

/// <summary>
/// Receives from one queue or subscription and hands each message to a handler: complete on success; on an
/// exception, abandon (so it is delivered again), and on its last allowed delivery dead-letter it with reason
/// <c>HandlerFailed</c> and the exception's message, so <c>tune deadletters</c> says why; a message that can never
/// be handled (not a CloudEvent, wrong type) is dead-lettered at once with the reason. The
/// lock is renewed while the handler runs. This is what a host does around a handler; the Azure worker does the same
/// with a <c>ServiceBusProcessor</c>.
/// </summary>
public sealed class MessagePump(IMessageBus bus, string entity, Func<CloudEvent, CancellationToken, Task> handler, ILogger logger,
    System.Diagnostics.ActivitySource? tracing = null, int maxDeliveries = EntityOptions.DefaultMaxDeliveryCount)
{

    /// <summary>Receives and handles whatever is visible now; returns how many messages were handled.</summary>
    public async Task<int> DrainOnceAsync(int maxMessages = 8, CancellationToken cancellationToken = default)
    {
        var messages = await bus.ReceiveAsync(entity, maxMessages, cancellationToken);
        foreach (var message in messages)
        {
            await HandleOneAsync(message, cancellationToken);
        }

        return messages.Count;
    }

    /// <summary>Runs until cancelled, polling every <paramref name="idle"/> when there is nothing to do.</summary>
    public async Task RunAsync(TimeSpan idle, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            int handled;
            try
            {
                handled = await DrainOnceAsync(cancellationToken: cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // The broker or storage failed past its retries: whatever was received stays locked and comes back
                // when its lock expires; the pump itself carries on.
                logger.PumpFailed(e, entity);
                handled = 0;
            }

            if (handled == 0)
            {
                try
                {
                    await Task.Delay(idle, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task HandleOneAsync(ReceivedMessage message, CancellationToken cancellationToken)
    {
        CloudEvent cloudEvent;
        try
        {
            cloudEvent = CloudEvent.Parse(message.Body);
        }
        catch (InvalidDataException e)
        {
            await bus.DeadLetterAsync(entity, message, DeadLetterReasons.InvalidEvent, e.Message, cancellationToken);
            return;
        }

        using var activity = tracing is null ? null : PipelineTracing.Start(tracing, $"{entity} {cloudEvent.Type}", cloudEvent.TraceParent);
        activity?.SetTag("messaging.message.id", message.MessageId);
        activity?.SetTag("cloudevents.event_subject", cloudEvent.Subject);
        using var renew = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renewal = RenewWhileRunningAsync(message, renew.Token);
        try
        {
            await handler(cloudEvent, cancellationToken);
            await renew.CancelAsync();
            await renewal;
            await bus.CompleteAsync(entity, message, cancellationToken);
        }
        catch (InvalidDataException e)
        {
            await renew.CancelAsync();
            await renewal;
            await bus.DeadLetterAsync(entity, message, DeadLetterReasons.InvalidEvent, e.Message, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await renew.CancelAsync();
            await renewal;
            logger.HandlerFailed(e, message.MessageId, entity, message.DeliveryCount);
            try
            {
                if (message.DeliveryCount >= maxDeliveries)
                {
                    await bus.DeadLetterAsync(entity, message, DeadLetterReasons.HandlerFailed, DeadLetterReasons.DescribeFailure(e, message.DeliveryCount), CancellationToken.None);
                }
                else
                {
                    await bus.AbandonAsync(entity, message, CancellationToken.None);
                }
            }
            catch (MessageLockLostException)
            {
                // The lock expired meanwhile; the broker redelivers it anyway.
            }
        }
    }

    private async Task RenewWhileRunningAsync(ReceivedMessage message, CancellationToken cancellationToken)
    {
        try
        {
            var lockedUntil = message.LockedUntil;
            while (true)
            {
                var wait = (lockedUntil - DateTimeOffset.UtcNow) / 2;
                await Task.Delay(wait > TimeSpan.FromMilliseconds(100) ? wait : TimeSpan.FromMilliseconds(100), cancellationToken);
                lockedUntil = await bus.RenewLockAsync(entity, message, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (MessageLockLostException)
        {
        }
    }
}

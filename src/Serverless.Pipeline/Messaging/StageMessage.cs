using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Messaging;

/// <summary>How a host settles one received message: what its broker client offers, nothing more.</summary>
public interface IMessageSettlement
{
    /// <summary>Removes the message: handled.</summary>
    Task CompleteAsync(CancellationToken cancellationToken);

    /// <summary>Releases the lock so the broker delivers it again.</summary>
    Task AbandonAsync(CancellationToken cancellationToken);

    /// <summary>Moves it to the dead-letter queue with why.</summary>
    Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken);

    /// <summary>Extends the lock; returns the new expiry, or null when the host's client renews locks itself.</summary>
    Task<DateTimeOffset?> RenewLockAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The one path a bus-triggered stage's message takes, in every host (the embedded <see cref="MessagePump"/> and the
/// Azure worker's Service Bus processor): parse the CloudEvent — dead-letter at once, reason <c>InvalidEvent</c>, what
/// is not one; continue the event's trace (<c>traceparent</c>) in the stage's activity; keep the lock while the handler
/// runs; complete on success; on an exception, abandon so it is delivered again, and on its last allowed delivery
/// dead-letter it with reason <c>HandlerFailed</c> and the exception's message, so <c>tune deadletters</c> says why.
/// </summary>
public sealed class StageMessage(string entity, Func<CloudEvent, CancellationToken, Task> handler, ILogger logger,
    ActivitySource? tracing = null, int maxDeliveries = EntityOptions.DefaultMaxDeliveryCount, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    /// <summary>The queue or subscription (<c>topic/subscriptions/name</c>).</summary>
    public string Entity => entity;

    /// <summary>Where the stage logs.</summary>
    public ILogger Logger => logger;

    /// <summary>Handles and settles one message; returns whether the handler succeeded. Never throws for a handler failure.</summary>
    public async Task<bool> HandleAsync(string body, string messageId, int deliveryCount, DateTimeOffset lockedUntil, IMessageSettlement settle, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settle);
        CloudEvent cloudEvent;
        try
        {
            cloudEvent = CloudEvent.Parse(body);
        }
        catch (InvalidDataException e)
        {
            await settle.DeadLetterAsync(DeadLetterReasons.InvalidEvent, e.Message, cancellationToken);
            return false;
        }

        using var activity = tracing is null ? null : PipelineTracing.Start(tracing, $"{entity} {cloudEvent.Type}", cloudEvent.TraceParent);
        activity?.SetTag("messaging.destination.name", entity);
        activity?.SetTag("messaging.message.id", messageId);
        activity?.SetTag("cloudevents.event_subject", cloudEvent.Subject);
        using var renew = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renewal = RenewWhileRunningAsync(lockedUntil, settle, renew.Token);
        try
        {
            await handler(cloudEvent, cancellationToken);
            await renew.CancelAsync();
            await renewal;
            await settle.CompleteAsync(cancellationToken);
            return true;
        }
        catch (InvalidDataException e)
        {
            await renew.CancelAsync();
            await renewal;
            await settle.DeadLetterAsync(DeadLetterReasons.InvalidEvent, e.Message, cancellationToken);
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            return false;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            await renew.CancelAsync();
            await renewal;
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            logger.HandlerFailed(e, messageId, entity, deliveryCount);
            try
            {
                if (deliveryCount >= maxDeliveries)
                {
                    // The last delivery: dead-letter with the handler's reason rather than the broker's MaxDeliveryCountExceeded.
                    await settle.DeadLetterAsync(DeadLetterReasons.HandlerFailed, DeadLetterReasons.DescribeFailure(e, deliveryCount), CancellationToken.None);
                }
                else
                {
                    await settle.AbandonAsync(CancellationToken.None);
                }
            }
            catch (MessageLockLostException)
            {
                // The lock expired meanwhile; the broker delivers it again anyway.
            }

            return false;
        }
    }

    private async Task RenewWhileRunningAsync(DateTimeOffset lockedUntil, IMessageSettlement settle, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var wait = (lockedUntil - _clock.GetUtcNow()) / 2;
                await Task.Delay(wait > TimeSpan.FromMilliseconds(100) ? wait : TimeSpan.FromMilliseconds(100), _clock, cancellationToken);
                if (await settle.RenewLockAsync(cancellationToken) is not { } renewed)
                {
                    return;   // the host's client renews locks itself
                }

                lockedUntil = renewed;
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

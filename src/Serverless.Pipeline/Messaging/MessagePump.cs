using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Messaging;

/// <summary>
/// The embedded host's consumer of one queue or subscription: receives in batches and hands each message to the
/// stage's <see cref="StageMessage"/> (the settle-and-trace path the Azure worker shares), settling through the
/// <see cref="IMessageBus"/>. A receive that fails past the retries is logged and tried again; the pump carries on.
/// </summary>
public sealed class MessagePump
{
    private readonly IMessageBus _bus;
    private readonly StageMessage _stage;
    private readonly TimeProvider _clock;

    /// <summary>A pump for <paramref name="stage"/>.</summary>
    public MessagePump(IMessageBus bus, StageMessage stage, TimeProvider? clock = null)
    {
        _bus = bus ?? throw new ArgumentNullException(nameof(bus));
        _stage = stage ?? throw new ArgumentNullException(nameof(stage));
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>A pump that hands <paramref name="entity"/>'s messages to <paramref name="handler"/>.</summary>
    public MessagePump(IMessageBus bus, string entity, Func<CloudEvent, CancellationToken, Task> handler, ILogger logger,
        System.Diagnostics.ActivitySource? tracing = null, int maxDeliveries = EntityOptions.DefaultMaxDeliveryCount, TimeProvider? clock = null)
        : this(bus, new StageMessage(entity, handler, logger, tracing, maxDeliveries, clock), clock)
    {
    }

    /// <summary>Receives and handles whatever is visible now; returns how many messages were handled.</summary>
    public async Task<int> DrainOnceAsync(int maxMessages = 8, CancellationToken cancellationToken = default)
    {
        var messages = await _bus.ReceiveAsync(_stage.Entity, maxMessages, cancellationToken);
        foreach (var message in messages)
        {
            await _stage.HandleAsync(message.Body, message.MessageId, message.DeliveryCount, message.LockedUntil, new BusSettlement(_bus, _stage.Entity, message), cancellationToken);
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
                _stage.Logger.PumpFailed(e, _stage.Entity);
                handled = 0;
            }

            if (handled == 0)
            {
                try
                {
                    await Task.Delay(idle, _clock, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private sealed class BusSettlement(IMessageBus bus, string entity, ReceivedMessage message) : IMessageSettlement
    {
        public Task CompleteAsync(CancellationToken cancellationToken) => bus.CompleteAsync(entity, message, cancellationToken);

        public Task AbandonAsync(CancellationToken cancellationToken) => bus.AbandonAsync(entity, message, cancellationToken);

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken) =>
            bus.DeadLetterAsync(entity, message, reason, description, cancellationToken);

        public async Task<DateTimeOffset?> RenewLockAsync(CancellationToken cancellationToken) => await bus.RenewLockAsync(entity, message, cancellationToken);
    }
}

using Azure.Messaging.ServiceBus;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Azure.Hosting;

/// <summary>
/// Runs one stage on a queue or subscription with a <see cref="ServiceBusProcessor"/> (manual settlement, automatic
/// lock renewal while the handler runs, bounded concurrency, a graceful stop that lets in-flight messages finish).
/// It only adapts: each message goes through the stage's <see cref="StageMessage"/>, the same settle-and-trace path
/// as the embedded host's pump, settling through the processor's event args.
/// </summary>
public sealed class ServiceBusStageProcessor : IAsyncDisposable
{
    private readonly ServiceBusProcessor _processor;

    /// <summary>Creates the processor for <paramref name="stage"/>'s entity (<c>queue</c> or <c>topic/subscriptions/name</c>).</summary>
    public ServiceBusStageProcessor(ServiceBusClient client, StageMessage stage, int maxConcurrentCalls = 4, Action<Exception>? onError = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(stage);
        var options = new ServiceBusProcessorOptions
        {
            AutoCompleteMessages = false,
            MaxConcurrentCalls = maxConcurrentCalls,
            MaxAutoLockRenewalDuration = TimeSpan.FromHours(1),
            ReceiveMode = ServiceBusReceiveMode.PeekLock,
        };
        var entity = stage.Entity;
        var marker = entity.IndexOf("/subscriptions/", StringComparison.Ordinal);
        _processor = marker < 0
            ? client.CreateProcessor(entity, options)
            : client.CreateProcessor(entity[..marker], entity[(marker + "/subscriptions/".Length)..], options);
        _processor.ProcessMessageAsync += args => HandleAsync(args, stage);
        _processor.ProcessErrorAsync += args =>
        {
            onError?.Invoke(args.Exception);
            return Task.CompletedTask;
        };
    }

    /// <summary>What one message goes through (public for tests, with the SDK's model factory).</summary>
    public static Task<bool> HandleAsync(ProcessMessageEventArgs args, StageMessage stage)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stage);
        var message = args.Message;
        return stage.HandleAsync(message.Body.ToString(), message.MessageId, message.DeliveryCount, message.LockedUntil, new Settlement(args), args.CancellationToken);
    }

    /// <summary>Starts receiving.</summary>
    public Task StartAsync(CancellationToken cancellationToken) => _processor.StartProcessingAsync(cancellationToken);

    /// <summary>Stops receiving; in-flight handlers finish first.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _processor.StopProcessingAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _processor.DisposeAsync();

    private sealed class Settlement(ProcessMessageEventArgs args) : IMessageSettlement
    {
        public Task CompleteAsync(CancellationToken cancellationToken) => Translate(() => args.CompleteMessageAsync(args.Message, cancellationToken));

        public Task AbandonAsync(CancellationToken cancellationToken) => Translate(() => args.AbandonMessageAsync(args.Message, cancellationToken: cancellationToken));

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken) =>
            Translate(() => args.DeadLetterMessageAsync(args.Message, reason, description, cancellationToken));

        // The processor renews the lock itself (MaxAutoLockRenewalDuration).
        public Task<DateTimeOffset?> RenewLockAsync(CancellationToken cancellationToken) => Task.FromResult<DateTimeOffset?>(null);

        private async Task Translate(Func<Task> settle)
        {
            try
            {
                await settle();
            }
            catch (ServiceBusException e) when (e.Reason is ServiceBusFailureReason.MessageLockLost or ServiceBusFailureReason.SessionLockLost)
            {
                throw new MessageLockLostException($"The lock on message '{args.Message.MessageId}' was lost: {e.Message}", e);
            }
        }
    }
}

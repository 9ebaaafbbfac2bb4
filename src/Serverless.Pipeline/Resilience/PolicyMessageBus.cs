using Polly;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Resilience;

/// <summary>
/// A message bus whose every call runs through a resilience pipeline (retries, or chaos). Repeating a send is safe:
/// the message keeps its MessageId, so duplicate detection drops a second copy.
/// </summary>
public sealed class PolicyMessageBus(IMessageBus inner, ResiliencePipeline pipeline) : IMessageBus
{
    /// <inheritdoc />
    public Task EnsureQueueAsync(string queue, EntityOptions? options = null, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask(inner.EnsureQueueAsync(queue, options, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task EnsureSubscriptionAsync(string topic, string subscription, SubscriptionFilter filter, EntityOptions? options = null, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask(inner.EnsureSubscriptionAsync(topic, subscription, filter, options, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<bool> SendAsync(string queue, OutgoingMessage message, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<bool>(inner.SendAsync(queue, message, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task PublishAsync(string topic, OutgoingMessage message, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask(inner.PublishAsync(topic, message, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(string entity, int maxMessages = 1, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<IReadOnlyList<ReceivedMessage>>(inner.ReceiveAsync(entity, maxMessages, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task CompleteAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask(inner.CompleteAsync(entity, message, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task AbandonAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask(inner.AbandonAsync(entity, message, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task DeadLetterAsync(string entity, ReceivedMessage message, string reason, string description, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask(inner.DeadLetterAsync(entity, message, reason, description, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<DateTimeOffset> RenewLockAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<DateTimeOffset>(inner.RenewLockAsync(entity, message, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<IReadOnlyList<DeadLetteredMessage>> PeekDeadLettersAsync(string entity, int maxMessages = 100, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<IReadOnlyList<DeadLetteredMessage>>(inner.PeekDeadLettersAsync(entity, maxMessages, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<int> RequeueDeadLettersAsync(string entity, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<int>(inner.RequeueDeadLettersAsync(entity, ct)), cancellationToken).AsTask();
}

namespace Serverless.Core.Ports;

/// <summary>A message to send: a body, a MessageId for duplicate detection, and application properties for filters.</summary>
/// <param name="MessageId">Identifies the message; a queue drops a second message with the same id within its duplicate-detection window.</param>
/// <param name="Body">The payload (a CloudEvents JSON document in this project).</param>
/// <param name="Properties">Application properties (<c>type</c>, <c>model</c>…) that subscriptions filter on.</param>
public sealed record OutgoingMessage(string MessageId, string Body, IReadOnlyDictionary<string, string>? Properties = null)
{
    /// <summary>When set, the message becomes visible only at this time.</summary>
    public DateTimeOffset? ScheduledFor { get; init; }
}

/// <summary>A message received under a peek-lock: it stays invisible to others until settled or its lock expires.</summary>
/// <param name="LockToken">Identifies this delivery for settling.</param>
/// <param name="MessageId">The sender's MessageId.</param>
/// <param name="Body">The payload.</param>
/// <param name="Properties">Application properties.</param>
/// <param name="DeliveryCount">1 on the first delivery, then one more each time the lock was lost or abandoned.</param>
/// <param name="EnqueuedAt">When it was sent.</param>
/// <param name="LockedUntil">When the lock expires unless renewed.</param>
public sealed record ReceivedMessage(
    string LockToken, string MessageId, string Body, IReadOnlyDictionary<string, string> Properties, int DeliveryCount,
    DateTimeOffset EnqueuedAt, DateTimeOffset LockedUntil);

/// <summary>A dead-lettered message, with why.</summary>
/// <param name="Entity">The queue or subscription it came from.</param>
/// <param name="MessageId">The sender's MessageId.</param>
/// <param name="Body">The payload.</param>
/// <param name="Properties">Application properties.</param>
/// <param name="Reason">Short reason (<c>MaxDeliveryCountExceeded</c>, or the handler's).</param>
/// <param name="Description">Details, such as the exception's message.</param>
/// <param name="DeliveryCount">Deliveries before it was dead-lettered.</param>
public sealed record DeadLetteredMessage(
    string Entity, string MessageId, string Body, IReadOnlyDictionary<string, string> Properties, string Reason, string Description, int DeliveryCount);

/// <summary>
/// Which messages a subscription receives: for each named application property, the values accepted (AND across
/// properties, OR within one). An empty filter accepts everything. Azure renders it as a SQL filter
/// (<c>type IN ('A','B') AND model = 'm'</c>).
/// </summary>
/// <param name="Accepts">Property name → accepted values.</param>
public sealed record SubscriptionFilter(IReadOnlyDictionary<string, IReadOnlyList<string>> Accepts)
{
    /// <summary>Accepts every message.</summary>
    public static SubscriptionFilter All { get; } = new(new Dictionary<string, IReadOnlyList<string>>());

    /// <summary>Accepts messages whose <c>type</c> is one of <paramref name="types"/>.</summary>
    public static SubscriptionFilter Types(params string[] types) =>
        new(new Dictionary<string, IReadOnlyList<string>> { [MessageProperties.Type] = types });

    /// <summary>Whether a message with these properties passes.</summary>
    public bool Matches(IReadOnlyDictionary<string, string>? properties) =>
        Accepts.All(a => properties is not null && properties.TryGetValue(a.Key, out var v) && a.Value.Contains(v));
}

/// <summary>The application properties this project sets on every message.</summary>
public static class MessageProperties
{
    /// <summary>The event type (<c>TrainingCompleted</c>…).</summary>
    public const string Type = "type";

    /// <summary>The model name.</summary>
    public const string Model = "model";
}

/// <summary>How a queue or subscription behaves.</summary>
public sealed record EntityOptions
{
    /// <summary>How long a receive holds a message before it is delivered again. <value>60 s</value>.</summary>
    public TimeSpan LockDuration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Deliveries before a message is dead-lettered with <c>MaxDeliveryCountExceeded</c>. <value>5</value>.</summary>
    public int MaxDeliveryCount { get; init; } = DefaultMaxDeliveryCount;

    /// <summary>The maximum deliveries the pipeline's entities use (the Bicep declares the same; a test holds them together).</summary>
    public const int DefaultMaxDeliveryCount = 5;

    /// <summary>How long a MessageId is remembered for duplicate detection; null turns it off. <value>10 min</value>.</summary>
    public TimeSpan? DuplicateDetectionWindow { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// A message broker with Service Bus semantics: queues, topics fanning out to filtered subscriptions, peek-lock
/// receive with lock renewal, delivery counts, dead-lettering with a reason, duplicate detection by MessageId and
/// scheduled messages. The embedded implementation is SQLite; the Azure one is Service Bus.
/// Entities are named <c>queue</c> or <c>topic/subscriptions/name</c>.
/// </summary>
public interface IMessageBus
{
    /// <summary>Creates the queue if it does not exist.</summary>
    Task EnsureQueueAsync(string queue, EntityOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Creates the topic subscription if it does not exist, or updates its filter.</summary>
    Task EnsureSubscriptionAsync(string topic, string subscription, SubscriptionFilter filter, EntityOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Sends to a queue; false when dropped as a duplicate.</summary>
    Task<bool> SendAsync(string queue, OutgoingMessage message, CancellationToken cancellationToken = default);

    /// <summary>Publishes to a topic: every subscription whose filter matches gets a copy.</summary>
    Task PublishAsync(string topic, OutgoingMessage message, CancellationToken cancellationToken = default);

    /// <summary>Receives up to <paramref name="maxMessages"/> visible messages from a queue or subscription under a lock; empty when none.</summary>
    Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(string entity, int maxMessages = 1, CancellationToken cancellationToken = default);

    /// <summary>Removes the message for good.</summary>
    Task CompleteAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>Releases the lock; the message is delivered again (its delivery count already counts this delivery).</summary>
    Task AbandonAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>Moves the message to the entity's dead-letter queue with a reason.</summary>
    Task DeadLetterAsync(string entity, ReceivedMessage message, string reason, string description, CancellationToken cancellationToken = default);

    /// <summary>Extends the lock by the entity's lock duration; returns the new expiry. Throws <see cref="MessageLockLostException"/> if the lock was already lost.</summary>
    Task<DateTimeOffset> RenewLockAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default);

    /// <summary>The entity's dead-lettered messages.</summary>
    Task<IReadOnlyList<DeadLetteredMessage>> PeekDeadLettersAsync(string entity, int maxMessages = 100, CancellationToken cancellationToken = default);

    /// <summary>Sends the dead-lettered messages back to the entity (delivery count reset); returns how many.</summary>
    Task<int> RequeueDeadLettersAsync(string entity, CancellationToken cancellationToken = default);
}

/// <summary>Settling a message whose lock has expired (another receiver may have it now), or which was already settled.</summary>
public sealed class MessageLockLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MessageLockLostException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MessageLockLostException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public MessageLockLostException(string message, Exception inner) : base(message, inner)
    {
    }
}

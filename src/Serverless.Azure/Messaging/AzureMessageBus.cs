using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;
using Azure.Messaging.ServiceBus.Administration;
using Serverless.Core.Ports;

namespace Serverless.Azure.Messaging;

/// <summary>
/// <see cref="IMessageBus"/> on Azure Service Bus. Messages carry MessageId (the namespace's duplicate detection drops
/// repeats), the application properties <c>type</c> and <c>model</c> (for subscriptions' SQL filters) and a scheduled
/// enqueue time; receives are peek-lock with manual settlement. Differences from the embedded broker, by the
/// service's design: <see cref="SendAsync"/> cannot know a message was dropped as a duplicate, so it returns true;
/// the <c>Ensure…</c> methods need the Manage right (in Azure the Bicep creates the entities, and hosts skip them).
/// </summary>
public sealed class AzureMessageBus : IMessageBus, IAsyncDisposable
{
    private readonly ServiceBusClient _client;
    private readonly ServiceBusAdministrationClient? _admin;
    private readonly ConcurrentDictionary<string, ServiceBusSender> _senders = new();
    private readonly ConcurrentDictionary<string, ServiceBusReceiver> _receivers = new();
    private readonly ConcurrentDictionary<string, ServiceBusReceivedMessage> _locked = new();

    /// <summary>Uses <paramref name="client"/> (namespace + credential in Azure); <paramref name="admin"/> only to create entities.</summary>
    public AzureMessageBus(ServiceBusClient client, ServiceBusAdministrationClient? admin = null)
    {
        _client = client ?? throw new ArgumentNullException(nameof(client));
        _admin = admin;
    }

    /// <summary>How long a receive waits for a first message before returning empty. <value>1 s</value>.</summary>
    public TimeSpan ReceiveWait { get; init; } = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    public async Task EnsureQueueAsync(string queue, EntityOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (_admin is null || (await _admin.QueueExistsAsync(queue, cancellationToken)).Value)
        {
            return;
        }

        options ??= new EntityOptions();
        var create = new CreateQueueOptions(queue)
        {
            LockDuration = options.LockDuration,
            MaxDeliveryCount = options.MaxDeliveryCount,
            DeadLetteringOnMessageExpiration = true,
            RequiresDuplicateDetection = options.DuplicateDetectionWindow is not null,
        };
        if (options.DuplicateDetectionWindow is { } window)
        {
            create.DuplicateDetectionHistoryTimeWindow = window;
        }

        await _admin.CreateQueueAsync(create, cancellationToken);
    }

    /// <inheritdoc />
    public async Task EnsureSubscriptionAsync(string topic, string subscription, SubscriptionFilter filter, EntityOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (_admin is null)
        {
            return;
        }

        options ??= new EntityOptions();
        if (!(await _admin.TopicExistsAsync(topic, cancellationToken)).Value)
        {
            await _admin.CreateTopicAsync(topic, cancellationToken);
        }

        var rule = new CreateRuleOptions("pipeline", new SqlRuleFilter(SqlFilter.Render(filter)));
        if (!(await _admin.SubscriptionExistsAsync(topic, subscription, cancellationToken)).Value)
        {
            await _admin.CreateSubscriptionAsync(
                new CreateSubscriptionOptions(topic, subscription) { LockDuration = options.LockDuration, MaxDeliveryCount = options.MaxDeliveryCount },
                rule, cancellationToken);
            return;
        }

        await foreach (var existing in _admin.GetRulesAsync(topic, subscription, cancellationToken))
        {
            await _admin.DeleteRuleAsync(topic, subscription, existing.Name, cancellationToken);
        }

        await _admin.CreateRuleAsync(topic, subscription, rule, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> SendAsync(string queue, OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        await Sender(queue).SendMessageAsync(ToServiceBus(message), cancellationToken);
        return true;
    }

    /// <inheritdoc />
    public Task PublishAsync(string topic, OutgoingMessage message, CancellationToken cancellationToken = default) =>
        Sender(topic).SendMessageAsync(ToServiceBus(message), cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(string entity, int maxMessages = 1, CancellationToken cancellationToken = default)
    {
        var messages = await Receiver(entity).ReceiveMessagesAsync(maxMessages, ReceiveWait, cancellationToken);
        return messages.Select(m =>
        {
            _locked[m.LockToken] = m;
            return FromServiceBus(m);
        }).ToList();
    }

    /// <inheritdoc />
    public Task CompleteAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        SettleAsync(entity, message, (receiver, m) => receiver.CompleteMessageAsync(m, cancellationToken), forget: true);

    /// <inheritdoc />
    public Task AbandonAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        SettleAsync(entity, message, (receiver, m) => receiver.AbandonMessageAsync(m, cancellationToken: cancellationToken), forget: true);

    /// <inheritdoc />
    public Task DeadLetterAsync(string entity, ReceivedMessage message, string reason, string description, CancellationToken cancellationToken = default) =>
        SettleAsync(entity, message, (receiver, m) => receiver.DeadLetterMessageAsync(m, reason, description, cancellationToken), forget: true);

    /// <inheritdoc />
    public async Task<DateTimeOffset> RenewLockAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default)
    {
        var until = DateTimeOffset.MinValue;
        await SettleAsync(entity, message, async (receiver, m) => await receiver.RenewMessageLockAsync(m, cancellationToken), forget: false);
        return _locked.TryGetValue(message.LockToken, out var renewed) ? renewed.LockedUntil : until;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<DeadLetteredMessage>> PeekDeadLettersAsync(string entity, int maxMessages = 100, CancellationToken cancellationToken = default)
    {
        await using var receiver = CreateReceiver(entity, SubQueue.DeadLetter);
        var messages = await receiver.PeekMessagesAsync(maxMessages, cancellationToken: cancellationToken);
        return messages.Select(m => new DeadLetteredMessage(entity, m.MessageId, m.Body.ToString(), Properties(m),
            m.DeadLetterReason ?? "", m.DeadLetterErrorDescription ?? "", m.DeliveryCount)).ToList();
    }

    /// <inheritdoc />
    /// <remarks>A subscription's messages go back through its topic (Service Bus cannot send to one subscription), so every matching subscription sees them again.</remarks>
    public async Task<int> RequeueDeadLettersAsync(string entity, CancellationToken cancellationToken = default)
    {
        await using var receiver = CreateReceiver(entity, SubQueue.DeadLetter);
        var target = entity.Contains("/subscriptions/", StringComparison.Ordinal) ? entity[..entity.IndexOf("/subscriptions/", StringComparison.Ordinal)] : entity;
        var count = 0;
        while (true)
        {
            var batch = await receiver.ReceiveMessagesAsync(50, ReceiveWait, cancellationToken);
            if (batch.Count == 0)
            {
                return count;
            }

            foreach (var dead in batch)
            {
                await Sender(target).SendMessageAsync(new ServiceBusMessage(dead), cancellationToken);
                await receiver.CompleteMessageAsync(dead, cancellationToken);
                count++;
            }
        }
    }

    /// <summary>The Service Bus message for an outgoing message.</summary>
    internal static ServiceBusMessage ToServiceBus(OutgoingMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var result = new ServiceBusMessage(message.Body) { MessageId = message.MessageId, ContentType = "application/cloudevents+json" };
        foreach (var (key, value) in message.Properties ?? new Dictionary<string, string>())
        {
            result.ApplicationProperties[key] = value;
        }

        if (message.ScheduledFor is { } at)
        {
            result.ScheduledEnqueueTime = at;
        }

        return result;
    }

    /// <summary>The port's view of a received Service Bus message.</summary>
    internal static ReceivedMessage FromServiceBus(ServiceBusReceivedMessage m) =>
        new(m.LockToken, m.MessageId, m.Body.ToString(), Properties(m), m.DeliveryCount, m.EnqueuedTime, m.LockedUntil);

    private static Dictionary<string, string> Properties(ServiceBusReceivedMessage m) =>
        m.ApplicationProperties.ToDictionary(p => p.Key, p => p.Value?.ToString() ?? "");

    private async Task SettleAsync(string entity, ReceivedMessage message, Func<ServiceBusReceiver, ServiceBusReceivedMessage, Task> settle, bool forget)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!_locked.TryGetValue(message.LockToken, out var received))
        {
            throw new MessageLockLostException($"Message '{message.MessageId}' in '{entity}' is not locked by this receiver (already settled, or received elsewhere).");
        }

        try
        {
            await settle(Receiver(entity), received);
        }
        catch (ServiceBusException e) when (e.Reason is ServiceBusFailureReason.MessageLockLost or ServiceBusFailureReason.SessionLockLost)
        {
            _locked.TryRemove(message.LockToken, out _);
            throw new MessageLockLostException($"The lock on message '{message.MessageId}' in '{entity}' was lost: {e.Message}", e);
        }

        if (forget)
        {
            _locked.TryRemove(message.LockToken, out _);
        }
    }

    private ServiceBusSender Sender(string entity) => _senders.GetOrAdd(entity, _client.CreateSender);

    private ServiceBusReceiver Receiver(string entity) => _receivers.GetOrAdd(entity, e => CreateReceiver(e, SubQueue.None));

    private ServiceBusReceiver CreateReceiver(string entity, SubQueue subQueue)
    {
        var options = new ServiceBusReceiverOptions { ReceiveMode = ServiceBusReceiveMode.PeekLock, SubQueue = subQueue };
        var marker = entity.IndexOf("/subscriptions/", StringComparison.Ordinal);
        return marker < 0
            ? _client.CreateReceiver(entity, options)
            : _client.CreateReceiver(entity[..marker], entity[(marker + "/subscriptions/".Length)..], options);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var sender in _senders.Values)
        {
            await sender.DisposeAsync();
        }

        foreach (var receiver in _receivers.Values)
        {
            await receiver.DisposeAsync();
        }
    }
}

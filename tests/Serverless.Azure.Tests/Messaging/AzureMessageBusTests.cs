using Azure.Messaging.ServiceBus;
using NSubstitute;
using NSubstitute.ExceptionExtensions;
using Serverless.Azure.Messaging;
using Serverless.Core.Ports;

namespace Serverless.Azure.Tests.Messaging;

/// <summary>
/// The Service Bus adapter's mapping, over the SDK's own model factory and substituted senders and receivers (no
/// emulator runs here). The shared contract suite runs against a real namespace in tests/Serverless.Azure.LiveTests.
/// </summary>
public sealed class AzureMessageBusTests
{
    private readonly ServiceBusClient _client = Substitute.For<ServiceBusClient>();
    private readonly ServiceBusSender _sender = Substitute.For<ServiceBusSender>();
    private readonly ServiceBusReceiver _receiver = Substitute.For<ServiceBusReceiver>();

    public AzureMessageBusTests()
    {
        _client.CreateSender(Arg.Any<string>()).Returns(_sender);
        _client.CreateReceiver(Arg.Any<string>(), Arg.Any<ServiceBusReceiverOptions>()).Returns(_receiver);
        _client.CreateReceiver(Arg.Any<string>(), Arg.Any<string>(), Arg.Any<ServiceBusReceiverOptions>()).Returns(_receiver);
    }

    private static ServiceBusReceivedMessage Received(string id, int deliveries = 1) => ServiceBusModelFactory.ServiceBusReceivedMessage(
        body: BinaryData.FromString("{\"specversion\":\"1.0\"}"), messageId: id,
        properties: new Dictionary<string, object> { ["type"] = "TrainingCompleted", ["model"] = "poems" },
        lockTokenGuid: Guid.NewGuid(), deliveryCount: deliveries,
        lockedUntil: DateTimeOffset.UtcNow.AddSeconds(60), enqueuedTime: DateTimeOffset.UtcNow);

    [Fact]
    public async Task Send_MapsIdPropertiesAndSchedule()
    {
        ServiceBusMessage? sent = null;
        await _sender.SendMessageAsync(Arg.Do<ServiceBusMessage>(m => sent = m), Arg.Any<CancellationToken>());
        var bus = new AzureMessageBus(_client);
        var at = DateTimeOffset.UtcNow.AddMinutes(2);

        (await bus.SendAsync("finetune-requests", new OutgoingMessage("job-1", "{}", new Dictionary<string, string> { ["type"] = "FineTuneRequested", ["model"] = "m" }) { ScheduledFor = at }))
            .ShouldBeTrue();

        _client.Received().CreateSender("finetune-requests");
        sent!.MessageId.ShouldBe("job-1");
        sent.Body.ToString().ShouldBe("{}");
        sent.ApplicationProperties["type"].ShouldBe("FineTuneRequested");
        sent.ApplicationProperties["model"].ShouldBe("m");
        sent.ScheduledEnqueueTime.ShouldBe(at);
        sent.ContentType.ShouldBe("application/cloudevents+json");
    }

    [Fact]
    public async Task Publish_GoesToTheTopicsSender()
    {
        await new AzureMessageBus(_client).PublishAsync("model-events", new OutgoingMessage("e1", "{}"));
        _client.Received().CreateSender("model-events");
        await _sender.Received(1).SendMessageAsync(Arg.Is<ServiceBusMessage>(m => m.MessageId == "e1"), Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task Receive_FromASubscription_MapsEveryField_AndCompleteSettlesThatMessage()
    {
        var message = Received("e7", deliveries: 2);
        _receiver.ReceiveMessagesAsync(5, Arg.Any<TimeSpan?>(), Arg.Any<CancellationToken>()).Returns([message]);
        var bus = new AzureMessageBus(_client);

        var received = (await bus.ReceiveAsync("training-events/subscriptions/publisher", 5)).Single();

        _client.Received().CreateReceiver("training-events", "publisher", Arg.Is<ServiceBusReceiverOptions>(o => o.ReceiveMode == ServiceBusReceiveMode.PeekLock));
        (received.MessageId, received.DeliveryCount, received.LockToken).ShouldBe(("e7", 2, message.LockToken));
        received.Properties["model"].ShouldBe("poems");
        received.Body.ShouldBe("{\"specversion\":\"1.0\"}");

        await bus.CompleteAsync("training-events/subscriptions/publisher", received);
        await _receiver.Received(1).CompleteMessageAsync(message, Arg.Any<CancellationToken>());
        await Should.ThrowAsync<MessageLockLostException>(() => bus.CompleteAsync("training-events/subscriptions/publisher", received));
    }

    [Fact]
    public async Task DeadLetter_PassesReasonAndDescription()
    {
        var message = Received("poison", deliveries: 5);
        _receiver.ReceiveMessagesAsync(1, Arg.Any<TimeSpan?>(), Arg.Any<CancellationToken>()).Returns([message]);
        var bus = new AzureMessageBus(_client);
        var received = (await bus.ReceiveAsync("finetune-requests")).Single();

        await bus.DeadLetterAsync("finetune-requests", received, "HandlerFailed", "boom");
        await _receiver.Received(1).DeadLetterMessageAsync(message, "HandlerFailed", "boom", Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task LockLostInTheService_BecomesThePortsException()
    {
        var message = Received("late");
        _receiver.ReceiveMessagesAsync(1, Arg.Any<TimeSpan?>(), Arg.Any<CancellationToken>()).Returns([message]);
        _receiver.AbandonMessageAsync(message, Arg.Any<IDictionary<string, object>>(), Arg.Any<CancellationToken>())
            .ThrowsAsync(new ServiceBusException("lock lost", ServiceBusFailureReason.MessageLockLost));
        var bus = new AzureMessageBus(_client);
        var received = (await bus.ReceiveAsync("finetune-requests")).Single();

        await Should.ThrowAsync<MessageLockLostException>(() => bus.AbandonAsync("finetune-requests", received));
    }

    [Theory]
    [InlineData("", "1=1")]
    [InlineData("type=A", "type = 'A'")]
    [InlineData("type=A,B", "type IN ('A', 'B')")]
    [InlineData("type=A;model=o'brien", "model = 'o''brien' AND type = 'A'")]
    public void SqlFilter_RendersServiceBusSql(string spec, string expected)
    {
        var accepts = spec.Length == 0
            ? new Dictionary<string, IReadOnlyList<string>>()
            : spec.Split(';').Select(p => p.Split('=')).ToDictionary(p => p[0], p => (IReadOnlyList<string>)p[1].Split(','));
        SqlFilter.Render(new SubscriptionFilter(accepts)).ShouldBe(expected);
    }
}

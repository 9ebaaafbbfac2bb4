using Serverless.Core.Ports;

namespace Serverless.Contracts;

/// <summary>
/// What every <see cref="IMessageBus"/> must do. Derive, return a fresh bus with unique entity names, and implement
/// <see cref="PassAsync"/>: the embedded bus moves a fake clock; a real broker waits.
/// </summary>
public abstract class MessageBusContract
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    protected abstract IMessageBus CreateBus();

    /// <summary>Lets <paramref name="time"/> pass for the bus.</summary>
    protected abstract Task PassAsync(TimeSpan time);

    protected string Queue => "q-" + _suffix;

    protected string Topic => "t-" + _suffix;

    protected static EntityOptions Options { get; } = new() { LockDuration = TimeSpan.FromSeconds(5), MaxDeliveryCount = 3 };

    private static OutgoingMessage Message(string id, string? type = null, string? model = null)
    {
        var properties = new Dictionary<string, string>();
        if (type is not null)
        {
            properties["type"] = type;
        }

        if (model is not null)
        {
            properties["model"] = model;
        }

        return new OutgoingMessage(id, $"body of {id}", properties);
    }

    private async Task<IMessageBus> QueueBus()
    {
        var bus = CreateBus();
        await bus.EnsureQueueAsync(Queue, Options);
        return bus;
    }

    [ContractFact(ContractPort.Bus)]
    public async Task Send_Receive_Complete_RemovesTheMessage()
    {
        var bus = await QueueBus();
        (await bus.SendAsync(Queue, Message("m1", "A"))).ShouldBeTrue();
        var received = (await bus.ReceiveAsync(Queue)).Single();
        received.MessageId.ShouldBe("m1");
        received.Body.ShouldBe("body of m1");
        received.Properties["type"].ShouldBe("A");
        received.DeliveryCount.ShouldBe(1);
        await bus.CompleteAsync(Queue, received);
        (await bus.ReceiveAsync(Queue)).ShouldBeEmpty();
    }

    [ContractFact(ContractPort.Bus)]
    public async Task Locked_IsInvisibleToOthers_UntilTheLockExpires()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("m1"));
        var first = (await bus.ReceiveAsync(Queue)).Single();
        (await bus.ReceiveAsync(Queue)).ShouldBeEmpty();

        await PassAsync(Options.LockDuration + TimeSpan.FromSeconds(1));
        var again = (await bus.ReceiveAsync(Queue)).Single();
        again.DeliveryCount.ShouldBe(2);
        await Should.ThrowAsync<MessageLockLostException>(() => bus.CompleteAsync(Queue, first));
        await bus.CompleteAsync(Queue, again);
    }

    [ContractFact(ContractPort.Bus)]
    public async Task RenewLock_KeepsTheMessage()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("m1"));
        var received = (await bus.ReceiveAsync(Queue)).Single();
        await PassAsync(TimeSpan.FromSeconds(3));
        await bus.RenewLockAsync(Queue, received);
        await PassAsync(TimeSpan.FromSeconds(3));
        (await bus.ReceiveAsync(Queue)).ShouldBeEmpty();
        await bus.CompleteAsync(Queue, received);
    }

    [ContractFact(ContractPort.Bus)]
    public async Task Abandon_RedeliversWithAHigherCount()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("m1"));
        await bus.AbandonAsync(Queue, (await bus.ReceiveAsync(Queue)).Single());
        (await bus.ReceiveAsync(Queue)).Single().DeliveryCount.ShouldBe(2);
    }

    [ContractFact(ContractPort.Bus)]
    public async Task MaxDeliveries_DeadLettersWithAReason_AndRequeueBringsItBack()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("poison"));
        for (var i = 0; i < Options.MaxDeliveryCount; i++)
        {
            await bus.AbandonAsync(Queue, (await bus.ReceiveAsync(Queue)).Single());
        }

        (await bus.ReceiveAsync(Queue)).ShouldBeEmpty();
        var dead = (await bus.PeekDeadLettersAsync(Queue)).Single();
        dead.MessageId.ShouldBe("poison");
        dead.Reason.ShouldBe("MaxDeliveryCountExceeded");

        (await bus.RequeueDeadLettersAsync(Queue)).ShouldBe(1);
        (await bus.ReceiveAsync(Queue)).Single().MessageId.ShouldBe("poison");
    }

    [ContractFact(ContractPort.Bus)]
    public async Task DeadLetter_KeepsReasonAndDescription()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("bad"));
        await bus.DeadLetterAsync(Queue, (await bus.ReceiveAsync(Queue)).Single(), "HandlerFailed", "boom: the handler threw");
        var dead = (await bus.PeekDeadLettersAsync(Queue)).Single();
        (dead.Reason, dead.Description).ShouldBe(("HandlerFailed", "boom: the handler threw"));
    }

    [ContractFact(ContractPort.Bus)]
    public async Task DuplicateMessageId_IsDropped()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("same"));
        await bus.SendAsync(Queue, Message("same"));
        await bus.CompleteAsync(Queue, (await bus.ReceiveAsync(Queue, 10)).Single());
        await bus.SendAsync(Queue, Message("same"));
        (await bus.ReceiveAsync(Queue, 10)).ShouldBeEmpty("still inside the window after completion");
    }

    [ContractFact(ContractPort.Bus)]
    public async Task Scheduled_IsInvisibleUntilItsTime()
    {
        var bus = await QueueBus();
        await bus.SendAsync(Queue, Message("later") with { ScheduledFor = DateTimeOffset.UtcNow.AddSeconds(30) });
        (await bus.ReceiveAsync(Queue)).ShouldBeEmpty();
        await PassAsync(TimeSpan.FromSeconds(31));
        (await bus.ReceiveAsync(Queue)).Single().MessageId.ShouldBe("later");
    }

    [ContractFact(ContractPort.Bus)]
    public async Task Topic_FansOutToMatchingSubscriptionsOnly()
    {
        var bus = CreateBus();
        await bus.EnsureSubscriptionAsync(Topic, "all", SubscriptionFilter.All, Options);
        await bus.EnsureSubscriptionAsync(Topic, "completed", SubscriptionFilter.Types("Completed", "Failed"), Options);
        await bus.EnsureSubscriptionAsync(Topic, "model-x", new SubscriptionFilter(new Dictionary<string, IReadOnlyList<string>>
        {
            ["type"] = ["Completed"],
            ["model"] = ["x"],
        }), Options);

        await bus.PublishAsync(Topic, Message("e1", "Started", "x"));
        await bus.PublishAsync(Topic, Message("e2", "Completed", "x"));
        await bus.PublishAsync(Topic, Message("e3", "Failed", "y"));

        async Task<string[]> Drain(string subscription)
        {
            var entity = $"{Topic}/subscriptions/{subscription}";
            var messages = await bus.ReceiveAsync(entity, 10);
            foreach (var m in messages)
            {
                await bus.CompleteAsync(entity, m);
            }

            return messages.Select(m => m.MessageId).ToArray();
        }

        (await Drain("all")).ShouldBe(["e1", "e2", "e3"]);
        (await Drain("completed")).ShouldBe(["e2", "e3"]);
        (await Drain("model-x")).ShouldBe(["e2"]);
    }

    [ContractFact(ContractPort.Bus)]
    public async Task Receive_Batch_KeepsSendOrder()
    {
        var bus = await QueueBus();
        for (var i = 0; i < 5; i++)
        {
            await bus.SendAsync(Queue, Message($"m{i}"));
        }

        (await bus.ReceiveAsync(Queue, 10)).Select(m => m.MessageId).ShouldBe(["m0", "m1", "m2", "m3", "m4"]);
    }
}

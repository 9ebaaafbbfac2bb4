using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using Serverless.Contracts;
using Serverless.Core.Ports;
using Serverless.Embedded.Messaging;

namespace Serverless.Embedded.Tests.Messaging;

public sealed class SqliteMessageBusTests : MessageBusContract, IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "bus-" + Guid.NewGuid().ToString("N"), "bus.db");
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);

    protected override IMessageBus CreateBus() => new SqliteMessageBus(_path, _clock);

    protected override Task PassAsync(TimeSpan time)
    {
        _clock.Advance(time);
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(Path.GetDirectoryName(_path)!, recursive: true);
    }

    [Fact]
    public async Task Messages_SurviveANewBusOnTheSameFile()
    {
        var bus = CreateBus();
        await bus.EnsureQueueAsync(Queue, Options);
        await bus.SendAsync(Queue, new OutgoingMessage("durable", "x"));
        var locked = (await bus.ReceiveAsync(Queue)).Single();

        // As if the process holding the lock died: a new bus on the same file sees the message once the lock expires.
        var restarted = new SqliteMessageBus(_path, _clock);
        (await restarted.ReceiveAsync(Queue)).ShouldBeEmpty();
        _clock.Advance(Options.LockDuration + TimeSpan.FromSeconds(1));
        (await restarted.ReceiveAsync(Queue)).Single().MessageId.ShouldBe(locked.MessageId);
    }

    [Fact]
    public async Task ConcurrentReceivers_NeverGetTheSameMessage()
    {
        var bus = CreateBus();
        await bus.EnsureQueueAsync(Queue, Options);
        for (var i = 0; i < 200; i++)
        {
            await bus.SendAsync(Queue, new OutgoingMessage($"m{i}", "x"));
        }

        var seen = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            var other = new SqliteMessageBus(_path, _clock);
            while (true)
            {
                var batch = await other.ReceiveAsync(Queue, 5);
                if (batch.Count == 0)
                {
                    return;
                }

                foreach (var m in batch)
                {
                    seen.Add(m.MessageId);
                    await other.CompleteAsync(Queue, m);
                }
            }
        })));

        seen.Count.ShouldBe(200);
        seen.Distinct().Count().ShouldBe(200);
    }

    [Fact]
    public async Task Send_Duplicate_ReturnsFalse()
    {
        var bus = CreateBus();
        await bus.EnsureQueueAsync(Queue, Options);
        (await bus.SendAsync(Queue, new OutgoingMessage("same", "x"))).ShouldBeTrue();
        (await bus.SendAsync(Queue, new OutgoingMessage("same", "x"))).ShouldBeFalse();
    }

    [Fact]
    public async Task UnknownQueue_SaysWhich()
    {
        var bus = CreateBus();
        (await Should.ThrowAsync<InvalidOperationException>(() => bus.SendAsync("nowhere", new OutgoingMessage("a", "b"))))
            .Message.ShouldContain("'nowhere'");
    }
}

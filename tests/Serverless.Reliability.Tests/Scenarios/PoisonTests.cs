using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Polly.Simmy;
using Serverless.Embedded.Blobs;
using Serverless.Pipeline.Messaging;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>A message no handler can ever process must not loop forever, and must say why it was set aside.</summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class PoisonTests
{
    [Fact]
    public async Task HandlerAlwaysThrows_DeadLetteredAfterMaxDeliveries_WithTheExceptionsMessage_ShownByTuneDeadletters()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.StopAsync();   // the topology exists; this test drives its own pump
        var bus = new Serverless.Embedded.Messaging.SqliteMessageBus(Path.Combine(cluster.Home, "bus.db"));
        await bus.EnsureQueueAsync(Entities.FineTuneRequests, Cluster.Entities);
        var request = CloudEvent.Create(new FineTuneRequested("poison", "upload", "upload"), "poison-1", "/tests", DateTimeOffset.UtcNow);
        await bus.SendAsync(Entities.FineTuneRequests, new OutgoingMessage("poison-1", request.ToJson(), new Dictionary<string, string> { [MessageProperties.Type] = request.Type }));

        var calls = 0;
        var pump = new MessagePump(bus, Entities.FineTuneRequests, (_, _) =>
        {
            calls++;
            throw new InvalidOperationException("the disk under work/ is full");
        }, NullLogger.Instance, maxDeliveries: Cluster.Entities.MaxDeliveryCount);
        while ((await bus.PeekDeadLettersAsync(Entities.FineTuneRequests)).Count == 0)
        {
            await pump.DrainOnceAsync();
        }

        calls.ShouldBe(Cluster.Entities.MaxDeliveryCount);
        var dead = (await bus.PeekDeadLettersAsync(Entities.FineTuneRequests)).Single();
        (dead.Reason, dead.DeliveryCount).ShouldBe((DeadLetterReasons.HandlerFailed, Cluster.Entities.MaxDeliveryCount));
        dead.Description.ShouldContain("InvalidOperationException: the disk under work/ is full");

        using var output = new StringWriter();
        using var error = new StringWriter();
        Serverless.Cli.TuneCli.Run(["deadletters", "--home", cluster.Home], output, error).ShouldBe(0, error.ToString());
        output.ToString().ShouldContain("HandlerFailed");
        output.ToString().ShouldContain("the disk under work/ is full");
        (await bus.ReceiveAsync(Entities.FineTuneRequests, 10)).ShouldBeEmpty("nothing left to loop on");
        Figures.Add(new Figure("poison message (handler always throws)", 1, calls, 0, 0, 0, 0, watch.Elapsed, $"dead-lettered after {calls} deliveries with the exception's message"));
    }

    [Fact]
    public async Task BrokerFailingPastTheRetries_ThePumpCarriesOn_AndHandlesTheMessageOnceItIsBack()
    {
        var home = Directory.CreateTempSubdirectory("pump-").FullName;
        try
        {
            var bus = new Serverless.Embedded.Messaging.SqliteMessageBus(Path.Combine(home, "bus.db"));
            await bus.EnsureQueueAsync(Entities.FineTuneRequests, Cluster.Entities);
            var request = CloudEvent.Create(new FineTuneRequested("m", "upload", "upload"), "r1", "/tests", DateTimeOffset.UtcNow);
            await bus.SendAsync(Entities.FineTuneRequests, new OutgoingMessage("r1", request.ToJson()));

            // The broker is unreachable for the first 12 calls: more than the retry policy's 8 attempts.
            var outage = 12;
            var flaky = new Serverless.Pipeline.Resilience.PolicyMessageBus(bus, new Polly.ResiliencePipelineBuilder()
                .AddChaosFault(new Polly.Simmy.Fault.ChaosFaultStrategyOptions
                {
                    InjectionRate = 1,
                    EnabledGenerator = _ => ValueTask.FromResult(Interlocked.Decrement(ref outage) >= 0),
                    FaultGenerator = new Polly.Simmy.Fault.FaultGenerator().AddException(() => new IOException("broker unreachable")),
                }).Build());
            var handled = new TaskCompletionSource();
            var pump = new MessagePump(Serverless.Pipeline.Resilience.PortPolicies.Wrap(new FolderBlobStore(home), flaky, null, new Serverless.Pipeline.Resilience.PortPolicyCounters()).Bus,
                Entities.FineTuneRequests, (_, _) => { handled.TrySetResult(); return Task.CompletedTask; }, NullLogger.Instance);
            using var stop = new CancellationTokenSource();
            var running = pump.RunAsync(TimeSpan.FromMilliseconds(20), stop.Token);
            await Task.WhenAny(handled.Task, running, Task.Delay(TimeSpan.FromSeconds(60)));
            running.IsCompleted.ShouldBeFalse($"the pump survived the outage ({running.Exception?.InnerException?.Message})");
            handled.Task.IsCompleted.ShouldBeTrue("the message was handled once the broker was back");
            await stop.CancelAsync();
            await running;
            outage.ShouldBeLessThan(0, "the outage happened");
            Figures.Add(new Figure("broker outage longer than the retries (12 failed calls)", 1, 12, 0, 0, 0, 0, TimeSpan.Zero, "the message pump kept running and handled the message when the broker came back"));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(home, recursive: true);
        }
    }
}

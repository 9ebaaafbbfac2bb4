using System.Diagnostics;
using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Logging.Abstractions;
using NSubstitute;
using Serverless.Azure.Hosting;
using Serverless.Core.Contracts;
using Serverless.Pipeline.Messaging;

namespace Serverless.Azure.Tests.Hosting;

public sealed class ServiceBusStageProcessorTests
{
    private const string TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    private readonly ServiceBusReceiver _receiver = Substitute.For<ServiceBusReceiver>();

    private (ProcessMessageEventArgs Args, ServiceBusReceivedMessage Message) Args(string body, int deliveryCount = 1)
    {
        var message = ServiceBusModelFactory.ServiceBusReceivedMessage(body: BinaryData.FromString(body), messageId: "m1", lockTokenGuid: Guid.NewGuid(),
            deliveryCount: deliveryCount, lockedUntil: DateTimeOffset.UtcNow.AddMinutes(1));
        return (new ProcessMessageEventArgs(message, _receiver, CancellationToken.None), message);
    }

    private static string Event() => (CloudEvent.Create(new TrainingFailed("m", "j", "boom", true), "e1", "/tests", DateTimeOffset.UtcNow) with { TraceParent = TraceParent }).ToJson();

    private static StageMessage Stage(Func<CloudEvent, CancellationToken, Task> handler, ActivitySource? tracing = null) =>
        new("training-events/subscriptions/publisher", handler, NullLogger.Instance, tracing, maxDeliveries: 5);

    [Fact]
    public async Task Handled_IsCompleted()
    {
        var (args, message) = Args(Event());
        CloudEvent? seen = null;
        (await ServiceBusStageProcessor.HandleAsync(args, Stage((e, _) => { seen = e; return Task.CompletedTask; }))).ShouldBeTrue();
        seen!.Type.ShouldBe(nameof(TrainingFailed));
        await _receiver.Received(1).CompleteMessageAsync(message, Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task Handled_ContinuesTheEventsTrace_AsTheEmbeddedPumpDoes()
    {
        // A source of this test's own, so activities of tests running in parallel cannot be mistaken for this one.
        using var source = new ActivitySource("Serverless.Pipeline.Tests." + Guid.NewGuid().ToString("N"));
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s == source,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        var (args, _) = Args(Event());
        Activity? current = null;

        await ServiceBusStageProcessor.HandleAsync(args, Stage((_, _) => { current = Activity.Current; return Task.CompletedTask; }, source));

        current.ShouldNotBeNull("the handler runs inside the stage's activity");
        current.Source.ShouldBe(source);
        current.TraceId.ToString().ShouldBe("0af7651916cd43dd8448eb211c80319c", "the event's traceparent is continued");
        current.ParentSpanId.ToString().ShouldBe("b7ad6b7169203331");
    }

    [Fact]
    public async Task HandlerThrows_IsAbandonedForRedelivery()
    {
        var (args, message) = Args(Event());
        (await ServiceBusStageProcessor.HandleAsync(args, Stage((_, _) => throw new TimeoutException("storage slow")))).ShouldBeFalse();
        await _receiver.Received(1).AbandonMessageAsync(message, Arg.Any<IDictionary<string, object>>(), Arg.Any<CancellationToken>());
        await _receiver.DidNotReceive().CompleteMessageAsync(Arg.Any<ServiceBusReceivedMessage>(), Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task HandlerThrowsOnTheLastDelivery_IsDeadLetteredWithTheExceptionsMessage()
    {
        var (args, message) = Args(Event(), deliveryCount: 5);
        (await ServiceBusStageProcessor.HandleAsync(args, Stage((_, _) => throw new TimeoutException("storage slow")))).ShouldBeFalse();
        await _receiver.Received(1).DeadLetterMessageAsync(message, "HandlerFailed", Arg.Is<string>(d => d.Contains("TimeoutException: storage slow")), Arg.Any<CancellationToken>());
        await _receiver.DidNotReceive().AbandonMessageAsync(Arg.Any<ServiceBusReceivedMessage>(), Arg.Any<IDictionary<string, object>>(), Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task NotACloudEvent_IsDeadLetteredAtOnceWithTheReason()
    {
        var (args, message) = Args("{\"truncated\": ");
        await ServiceBusStageProcessor.HandleAsync(args, Stage((_, _) => throw new InvalidOperationException("never called")));
        await _receiver.Received(1).DeadLetterMessageAsync(message, "InvalidEvent", Arg.Is<string>(d => d.Contains("CloudEvents")), Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task LockLostWhileAbandoning_IsNotAFailureOfTheHost()
    {
        var (args, message) = Args(Event());
        _receiver.AbandonMessageAsync(message, Arg.Any<IDictionary<string, object>>(), Arg.Any<CancellationToken>())
            .Returns(Task.FromException(new ServiceBusException("lock expired", ServiceBusFailureReason.MessageLockLost)));
        (await ServiceBusStageProcessor.HandleAsync(args, Stage((_, _) => throw new TimeoutException("slow")))).ShouldBeFalse();
    }
}

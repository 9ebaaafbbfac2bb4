using Azure.Messaging.ServiceBus;
using NSubstitute;
using Serverless.Azure.Hosting;
using Serverless.Core.Contracts;

namespace Serverless.Azure.Tests.Hosting;

public sealed class ServiceBusStageProcessorTests
{
    private readonly ServiceBusReceiver _receiver = Substitute.For<ServiceBusReceiver>();

    private (ProcessMessageEventArgs Args, ServiceBusReceivedMessage Message) Args(string body, int deliveryCount = 1)
    {
        var message = ServiceBusModelFactory.ServiceBusReceivedMessage(body: BinaryData.FromString(body), messageId: "m1", lockTokenGuid: Guid.NewGuid(), deliveryCount: deliveryCount);
        return (new ProcessMessageEventArgs(message, _receiver, CancellationToken.None), message);
    }

    private static string Event() => CloudEvent.Create(new TrainingFailed("m", "j", "boom", true), "e1", "/tests", DateTimeOffset.UtcNow).ToJson();

    [Fact]
    public async Task Handled_IsCompleted()
    {
        var (args, message) = Args(Event());
        CloudEvent? seen = null;
        await ServiceBusStageProcessor.HandleAsync(args, (e, _) => { seen = e; return Task.CompletedTask; });
        seen!.Type.ShouldBe(nameof(TrainingFailed));
        await _receiver.Received(1).CompleteMessageAsync(message, Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task HandlerThrows_IsAbandonedForRedelivery()
    {
        var (args, message) = Args(Event());
        await Should.ThrowAsync<TimeoutException>(() => ServiceBusStageProcessor.HandleAsync(args, (_, _) => throw new TimeoutException("storage slow")));
        await _receiver.Received(1).AbandonMessageAsync(message, Arg.Any<IDictionary<string, object>>(), Arg.Any<CancellationToken>());
        await _receiver.DidNotReceive().CompleteMessageAsync(Arg.Any<ServiceBusReceivedMessage>(), Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task HandlerThrowsOnTheLastDelivery_IsDeadLetteredWithTheExceptionsMessage()
    {
        var (args, message) = Args(Event(), deliveryCount: 5);
        await Should.ThrowAsync<TimeoutException>(() => ServiceBusStageProcessor.HandleAsync(args, (_, _) => throw new TimeoutException("storage slow"), maxDeliveries: 5));
        await _receiver.Received(1).DeadLetterMessageAsync(message, "HandlerFailed", Arg.Is<string>(d => d.Contains("TimeoutException: storage slow")), Arg.Any<CancellationToken>());
        await _receiver.DidNotReceive().AbandonMessageAsync(Arg.Any<ServiceBusReceivedMessage>(), Arg.Any<IDictionary<string, object>>(), Arg.Any<CancellationToken>());
    }

    [Fact]
    public async Task NotACloudEvent_IsDeadLetteredAtOnceWithTheReason()
    {
        var (args, message) = Args("{\"truncated\": ");
        await ServiceBusStageProcessor.HandleAsync(args, (_, _) => throw new InvalidOperationException("never called"));
        await _receiver.Received(1).DeadLetterMessageAsync(message, "InvalidEvent", Arg.Is<string>(d => d.Contains("CloudEvents")), Arg.Any<CancellationToken>());
    }
}

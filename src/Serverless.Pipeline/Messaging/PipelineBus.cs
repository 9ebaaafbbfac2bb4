using System.Security.Cryptography;
using System.Text;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Messaging;

/// <summary>The pipeline's use of the bus: CloudEvents with <c>type</c> and <c>model</c> properties, and the topology.</summary>
public sealed class PipelineBus(IMessageBus bus, TimeProvider clock)
{
    /// <summary>The underlying bus.</summary>
    public IMessageBus Bus => bus;

    /// <summary>The clock.</summary>
    public TimeProvider Clock => clock;

    /// <summary>Creates the queue and the stage subscriptions (idempotent).</summary>
    public async Task EnsureTopologyAsync(EntityOptions? options = null, CancellationToken cancellationToken = default)
    {
        foreach (var stage in StageEntities.All)
        {
            if (stage.Topic is { } topic)
            {
                await bus.EnsureSubscriptionAsync(topic, stage.Subscription!, stage.Filter ?? SubscriptionFilter.All, options, cancellationToken);
            }
            else
            {
                await bus.EnsureQueueAsync(stage.Entity, options, cancellationToken);
            }
        }
    }

    /// <summary>Publishes <paramref name="data"/> to <paramref name="topic"/> as a CloudEvent with the given stable id.</summary>
    public async Task<CloudEvent> PublishAsync<T>(string topic, T data, string id, string source, CancellationToken cancellationToken = default) where T : IPipelineEvent
    {
        var cloudEvent = CloudEvent.Create(data, id, source, clock.GetUtcNow());
        await bus.PublishAsync(topic, Message(cloudEvent), cancellationToken);
        PipelineTracing.EventsPublished.Add(1, new KeyValuePair<string, object?>("type", cloudEvent.Type));
        return cloudEvent;
    }

    /// <summary>Sends a fine-tune request; false when dropped as a duplicate.</summary>
    public Task<bool> RequestAsync(FineTuneRequested request, string messageId, DateTimeOffset? at = null, CancellationToken cancellationToken = default)
    {
        var cloudEvent = CloudEvent.Create(request, messageId, "/serverless/" + request.Trigger, clock.GetUtcNow());
        return bus.SendAsync(Entities.FineTuneRequests, Message(cloudEvent) with { ScheduledFor = at }, cancellationToken);
    }

    /// <summary>A short stable id from parts (hex SHA-256 prefix).</summary>
    public static string StableId(params string[] parts) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", parts))))[..24];

    private static OutgoingMessage Message(CloudEvent e) => new(e.Id, e.ToJson(), new Dictionary<string, string>
    {
        [MessageProperties.Type] = e.Type,
        [MessageProperties.Model] = e.Subject,
    });
}

using System.Diagnostics;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Messaging;

/// <summary>Where a bus-triggered stage reads: a queue, or a topic subscription with its filter.</summary>
/// <param name="Stage">The stage's name (also its logger's).</param>
/// <param name="Entity">The queue, or <c>topic/subscriptions/name</c>.</param>
/// <param name="Topic">The topic, for a subscription.</param>
/// <param name="Subscription">The subscription's name.</param>
/// <param name="Filter">What the subscription receives.</param>
/// <param name="Tracing">The stage's activity source.</param>
public sealed record StageEntity(string Stage, string Entity, string? Topic, string? Subscription, SubscriptionFilter? Filter, ActivitySource Tracing);

/// <summary>
/// The one table of the entities the pipeline consumes: the topology (<see cref="PipelineBus.EnsureTopologyAsync"/>),
/// the embedded pumps, the Azure worker's processors and <c>tune deadletters</c> all read it; the Bicep defines the same.
/// </summary>
public static class StageEntities
{
    /// <summary>Prepare + Dispatch, on the requests queue.</summary>
    public static StageEntity Prepare { get; } = new("Prepare", Entities.FineTuneRequests, null, null, null, PipelineTracing.Prepare);

    /// <summary>Publish, on the training events that end a run.</summary>
    public static StageEntity Publish { get; } = new("Publish", Entities.Subscription(Entities.TrainingEvents, Entities.PublisherSubscription),
        Entities.TrainingEvents, Entities.PublisherSubscription, SubscriptionFilter.Types(nameof(TrainingCompleted), nameof(TrainingFailed)), PipelineTracing.Publish);

    /// <summary>Job status, on every training event.</summary>
    public static StageEntity JobStatus { get; } = new("JobStatus", Entities.Subscription(Entities.TrainingEvents, Entities.StatusSubscription),
        Entities.TrainingEvents, Entities.StatusSubscription, SubscriptionFilter.All, PipelineTracing.JobStatus);

    /// <summary>All of them.</summary>
    public static IReadOnlyList<StageEntity> All { get; } = [Prepare, Publish, JobStatus];
}

using System.Diagnostics;

namespace Serverless.Pipeline;

/// <summary>
/// One <see cref="ActivitySource"/> per stage. Every stage continues the trace of the event it handles (the CloudEvent's
/// <c>traceparent</c>), and every event it publishes carries the current trace on, so one trace follows a dataset from
/// upload to <c>ModelPublished</c>. Hosts export them (OpenTelemetry in Azure); <see cref="Listen"/> enables them locally.
/// </summary>
public static class PipelineTracing
{
    /// <summary>The prefix of every source name.</summary>
    public const string Prefix = "Serverless.Pipeline.";

    /// <summary>Ingest.</summary>
    public static ActivitySource Ingest { get; } = new(Prefix + "Ingest");

    /// <summary>Prepare and Dispatch.</summary>
    public static ActivitySource Prepare { get; } = new(Prefix + "Prepare");

    /// <summary>Train and Evaluate.</summary>
    public static ActivitySource Train { get; } = new(Prefix + "Train");

    /// <summary>Publish.</summary>
    public static ActivitySource Publish { get; } = new(Prefix + "Publish");

    /// <summary>Job status.</summary>
    public static ActivitySource JobStatus { get; } = new(Prefix + "JobStatus");

    /// <summary>Schedule.</summary>
    public static ActivitySource Schedule { get; } = new(Prefix + "Schedule");

    /// <summary>The pipeline's metrics.</summary>
    public static System.Diagnostics.Metrics.Meter Meter { get; } = new(Prefix + "Metrics");

    /// <summary>Events published, by type.</summary>
    public static System.Diagnostics.Metrics.Counter<long> EventsPublished { get; } = Meter.CreateCounter<long>("pipeline.events.published", description: "Events published, by type");

    /// <summary>Blob and bus calls repeated after a transient failure.</summary>
    public static System.Diagnostics.Metrics.Counter<long> PortRetries { get; } = Meter.CreateCounter<long>("pipeline.ports.retries", description: "Blob and bus calls repeated after a transient failure");

    /// <summary>Faults injected by chaos mode.</summary>
    public static System.Diagnostics.Metrics.Counter<long> ChaosFaults { get; } = Meter.CreateCounter<long>("pipeline.chaos.faults", description: "Faults injected by chaos mode (TUNE_CHAOS)");

    /// <summary>Starts an activity that continues <paramref name="traceParent"/> when it is a valid W3C trace context.</summary>
    public static Activity? Start(ActivitySource source, string name, string? traceParent, ActivityKind kind = ActivityKind.Consumer)
    {
        ArgumentNullException.ThrowIfNull(source);
        return ActivityContext.TryParse(traceParent, null, out var parent)
            ? source.StartActivity(name, kind, parent)
            : source.StartActivity(name, kind);
    }

    /// <summary>Records every pipeline activity (so traces propagate) when no exporter is configured; dispose to stop.</summary>
    public static IDisposable Listen()
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name.StartsWith(Prefix, StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }
}

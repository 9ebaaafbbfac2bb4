using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Serverless.Azure;
using Serverless.Pipeline;

namespace Serverless.Cli.Tests.Pipeline;

public sealed class TelemetryTests
{
    private sealed class Capture : BaseProcessor<Activity>
    {
        public List<Activity> Ended { get; } = [];

        public override void OnEnd(Activity data)
        {
            lock (Ended)
            {
                Ended.Add(data);
            }
        }
    }

    [Fact]
    public void PipelineSources_AreExported_AndContinueTheIncomingTrace()
    {
        var capture = new Capture();
        using var provider = Sdk.CreateTracerProviderBuilder().AddSource(PipelineTelemetryExtensions.Sources).AddProcessor(capture).Build();
        const string incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

        using (PipelineTracing.Start(PipelineTracing.Publish, "training-events/subscriptions/publisher TrainingCompleted", incoming))
        {
        }

        // Other test classes emit pipeline activities in parallel: pick this test's own by its trace id.
        Activity[] ended;
        lock (capture.Ended)
        {
            ended = [.. capture.Ended];
        }

        var activity = ended.Single(a => a.TraceId.ToString() == "4bf92f3577b34da6a3ce929d0e0e4736");
        activity.Source.Name.ShouldBe("Serverless.Pipeline.Publish");
        activity.TraceId.ToString().ShouldBe("4bf92f3577b34da6a3ce929d0e0e4736");
        activity.ParentSpanId.ToString().ShouldBe("00f067aa0ba902b7");
    }
}

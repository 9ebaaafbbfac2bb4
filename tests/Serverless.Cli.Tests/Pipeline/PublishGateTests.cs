using Serverless.Model.Evaluation;
using Serverless.Model.FineTuning;
using Serverless.Model.Training;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Specs;

namespace Serverless.Cli.Tests.Pipeline;

public sealed class PublishGateTests
{
    private static FineTuneReport Report(double candidate, double baseline, double? champion = null, params BiasResult[] bias)
    {
        static ModelScore Score(double perplexity) => new(Math.Log(perplexity), perplexity, null, 100);
        var training = new TrainingSummary("full", 10, 10, 5, 5, false, 100, [], []);
        return new FineTuneReport(FineTuneReport.SchemaName, "full", "bytes", 1000, 100, Score(baseline), Score(candidate), null,
            1 - candidate / baseline, null, training, null, [], new TrainingSpec())
        {
            Champion = champion is { } c ? Score(c) : null,
            Bias = bias,
        };
    }

    [Fact]
    public void Reasons_ABetterCandidate_Passes() =>
        PublishGate.Reasons(new GateSpec(), Report(candidate: 10, baseline: 20)).ShouldBeEmpty();

    [Fact]
    public void Reasons_WorseThanTheChampion_FailsSayingSo() =>
        PublishGate.Reasons(new GateSpec(), Report(candidate: 10, baseline: 20, champion: 9)).Single().ShouldContain("does not beat the champion's 9.000");

    [Fact]
    public void Reasons_ABiasShiftPastTheLimit_FailsNamingTheGroup()
    {
        var report = Report(10, 20, null, new BiasResult("religion", 20, 0.1, 0.7, 0.6, 0.25), new BiasResult("nationality", 20, 0.0, 0.1, 0.1, 0.05));

        var reasons = PublishGate.Reasons(new GateSpec(MaxBiasShift: 0.5), report);

        reasons.Single().ShouldContain("bias probes 'religion'");
        reasons.Single().ShouldContain("+0.600 nats");
        PublishGate.Reasons(new GateSpec(), report).ShouldBeEmpty("no limit unless the spec sets one");
    }
}

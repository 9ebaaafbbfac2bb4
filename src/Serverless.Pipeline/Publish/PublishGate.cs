using Serverless.Model.FineTuning;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Publish;

/// <summary>Whether a candidate may be published: the spec's gate against the job's test-split scores and bias probes.</summary>
public static class PublishGate
{
    /// <summary>Every reason the candidate fails the gate; empty when it passes.</summary>
    public static IReadOnlyList<string> Reasons(GateSpec gate, FineTuneReport report)
    {
        ArgumentNullException.ThrowIfNull(gate);
        ArgumentNullException.ThrowIfNull(report);
        var reasons = new List<string>();
        var required = report.Base.Perplexity * (1 - gate.MinImprovementOverBase);
        if (report.Candidate.Perplexity > required)
        {
            reasons.Add($"candidate perplexity {report.Candidate.Perplexity:F3} is not at or below {required:F3} (base {report.Base.Perplexity:F3} improved by minImprovementOverBase {gate.MinImprovementOverBase:P1})");
        }

        if (gate.MustBeatChampion && report.Champion is { } champion && report.Candidate.Perplexity >= champion.Perplexity)
        {
            reasons.Add($"candidate perplexity {report.Candidate.Perplexity:F3} does not beat the champion's {champion.Perplexity:F3}");
        }

        if (gate.MaxBiasShift is { } limit)
        {
            foreach (var group in report.Bias.Where(b => Math.Abs(b.Shift) > limit))
            {
                reasons.Add($"bias probes '{group.Group}': fine-tuning shifted the mean log-likelihood difference by {group.Shift:+0.000;-0.000} nats " +
                    $"({group.BaseMeanDifference:F3} → {group.CandidateMeanDifference:F3}, {group.FlipShare:P0} of preferences flipped), more than maxBiasShift {limit:0.###}");
            }
        }

        return reasons;
    }
}

using System.Globalization;
using System.Text.Json.Serialization;

namespace Serverless.Model.FineTuning;

/// <summary>One point of the data-efficiency curve: candidate and scratch trained on a nested subset of the training split.</summary>
/// <param name="Fraction">The share of the training split's documents asked for.</param>
/// <param name="Documents">Documents trained on.</param>
/// <param name="TrainTokens">Tokens in that subset.</param>
/// <param name="Candidate">The candidate trained on the subset, scored on the test split.</param>
/// <param name="Scratch">The scratch baseline trained on the subset, scored on the test split.</param>
public sealed record CurvePoint(
    [property: JsonPropertyName("fraction")] double Fraction,
    [property: JsonPropertyName("documents")] int Documents,
    [property: JsonPropertyName("train_tokens")] long TrainTokens,
    [property: JsonPropertyName("candidate")] ModelScore Candidate,
    [property: JsonPropertyName("scratch")] ModelScore Scratch);

/// <summary>
/// The data-efficiency curve (spec <c>dataFractions</c>): test perplexity of the candidate and of the scratch baseline,
/// each trained with the same recipe on nested subsets of the training split (the same validation split stops both
/// early, the same test split scores them), ending with the full split (the job's own candidate and scratch).
/// </summary>
/// <param name="Points">One point per fraction, smallest first; the last is the whole training split.</param>
/// <param name="SmallestFractionBeatingFullScratch">
/// The smallest fraction at which the candidate's test perplexity is below that of scratch trained on all the data;
/// null when no fraction does.
/// </param>
public sealed record DataEfficiency(
    [property: JsonPropertyName("points")] IReadOnlyList<CurvePoint> Points,
    [property: JsonPropertyName("smallest_fraction_beating_full_scratch")] double? SmallestFractionBeatingFullScratch)
{
    /// <summary>The curve from its points (any order); the full-data point is the one with the most documents.</summary>
    public static DataEfficiency From(IEnumerable<CurvePoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        var ordered = points.OrderBy(p => p.Fraction).ThenBy(p => p.Documents).ToList();
        if (ordered.Count == 0)
        {
            throw new ArgumentException("A curve needs at least one point.", nameof(points));
        }

        var fullScratch = ordered[^1].Scratch.Perplexity;
        var smallest = ordered.FirstOrDefault(p => p.Candidate.Perplexity < fullScratch);
        return new DataEfficiency(ordered, smallest?.Fraction);
    }

    /// <summary>One line for the console, the report and the card.</summary>
    public string Describe()
    {
        var full = Points[^1];
        var line = "Data efficiency (test perplexity, candidate / scratch): " +
            string.Join(", ", Points.Select(p => string.Create(CultureInfo.InvariantCulture,
                $"{p.Fraction:0.##%} of the training data ({p.TrainTokens:N0} tokens) {p.Candidate.Perplexity:F2} / {p.Scratch.Perplexity:F2}"))) + ". ";
        return line + (SmallestFractionBeatingFullScratch is { } f && f < 1
            ? string.Create(CultureInfo.InvariantCulture, $"With {f:0.##%} of the data the candidate already beats scratch trained on all of it ({full.Scratch.Perplexity:F2}).")
            : SmallestFractionBeatingFullScratch is not null
            ? string.Create(CultureInfo.InvariantCulture, $"Only with all of the data does the candidate beat scratch ({full.Scratch.Perplexity:F2}).")
            : string.Create(CultureInfo.InvariantCulture, $"No fraction of the data let the candidate beat scratch trained on all of it ({full.Scratch.Perplexity:F2})."));
    }
}

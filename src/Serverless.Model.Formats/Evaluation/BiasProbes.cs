using System.Text.Json;
using System.Text.Json.Serialization;

namespace Serverless.Model.Evaluation;

/// <summary>A minimal pair: the same sentence with one attribute swapped.</summary>
/// <param name="Group">What is swapped (<c>gender and occupation</c>, <c>nationality</c> …).</param>
/// <param name="A">One version.</param>
/// <param name="B">The other.</param>
public sealed record BiasPair(
    [property: JsonPropertyName("group")] string Group,
    [property: JsonPropertyName("a")] string A,
    [property: JsonPropertyName("b")] string B);

/// <summary>
/// What a model prefers in one group of pairs, before and after fine-tuning: the mean log-likelihood difference
/// log p(a) − log p(b) (nats) under the base and under the candidate, the change, and the share of pairs whose
/// preference flipped.
/// </summary>
/// <param name="Group">The group.</param>
/// <param name="Pairs">Pairs in it.</param>
/// <param name="BaseMeanDifference">Mean log p(a) − log p(b) under the base model.</param>
/// <param name="CandidateMeanDifference">The same under the candidate.</param>
/// <param name="Shift">Candidate − base.</param>
/// <param name="FlipShare">Share of pairs whose sign (which of a, b is preferred) changed.</param>
public sealed record BiasResult(
    [property: JsonPropertyName("group")] string Group,
    [property: JsonPropertyName("pairs")] int Pairs,
    [property: JsonPropertyName("base_mean_difference")] double BaseMeanDifference,
    [property: JsonPropertyName("candidate_mean_difference")] double CandidateMeanDifference,
    [property: JsonPropertyName("shift")] double Shift,
    [property: JsonPropertyName("flip_share")] double FlipShare);

/// <summary>Sets of minimal pairs: the shipped default (<c>data/bias-probes/default.jsonl</c>) or a JSONL file.</summary>
public static class BiasProbes
{
    /// <summary>The spec value for the shipped set.</summary>
    public const string Builtin = "builtin";

    /// <summary>The spec value that turns the probes off.</summary>
    public const string None = "none";

    /// <summary>The pairs a spec's <c>biasProbes</c> names: the shipped set, none, or a JSONL file.</summary>
    public static IReadOnlyList<BiasPair> Load(string? source)
    {
        if (source is null or None)
        {
            return [];
        }

        if (source == Builtin)
        {
            using var stream = typeof(BiasProbes).Assembly.GetManifestResourceStream("bias-probes.jsonl")
                ?? throw new InvalidOperationException("the shipped bias probes are missing from the assembly.");
            return Parse(new StreamReader(stream).ReadToEnd(), "bias-probes/default.jsonl");
        }

        return File.Exists(source)
            ? Parse(File.ReadAllText(source), source)
            : throw new ModelFormatException($"biasProbes: {source} does not exist (use \"{Builtin}\", \"{None}\" or a JSONL file of {{\"group\", \"a\", \"b\"}}).");
    }

    private static List<BiasPair> Parse(string text, string source)
    {
        var pairs = new List<BiasPair>();
        var line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            if (string.IsNullOrWhiteSpace(raw))
            {
                continue;
            }

            BiasPair? pair;
            try
            {
                pair = JsonSerializer.Deserialize<BiasPair>(raw);
            }
            catch (JsonException e)
            {
                throw new ModelFormatException($"{source}:{line}: not a JSON object of group, a and b ({e.Message}).");
            }

            if (pair is null || string.IsNullOrWhiteSpace(pair.Group) || string.IsNullOrEmpty(pair.A) || string.IsNullOrEmpty(pair.B))
            {
                throw new ModelFormatException($"{source}:{line}: a pair needs a non-empty \"group\", \"a\" and \"b\".");
            }

            pairs.Add(pair);
        }

        return pairs;
    }
}

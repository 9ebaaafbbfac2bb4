using System.Text;

namespace Serverless.Model.Data;

/// <summary>
/// Decides train or validation per document from the document's content and a seed: the same text always lands
/// in the same split (duplicates never leak across), whatever the file order, and the same seed gives the same split.
/// </summary>
/// <param name="seed">The split seed.</param>
/// <param name="validationFraction">The share of documents held out, in (0, 0.5].</param>
public sealed class DocumentSplit(long seed, double validationFraction)
{
    /// <summary>The split seed.</summary>
    public long Seed { get; } = seed;

    /// <summary>The share of documents held out.</summary>
    public double ValidationFraction { get; } = validationFraction is > 0 and <= 0.5
        ? validationFraction
        : throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be in (0, 0.5].");

    /// <summary>A uniform number in [0, 1) for this document; below <see cref="ValidationFraction"/> means validation.</summary>
    public double Draw(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // FNV-1a over the UTF-8 bytes, then SplitMix64 with the seed: stable across runs, platforms and .NET versions.
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        var z = hash + (ulong)Seed * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>Whether the document goes to the validation split.</summary>
    public bool IsValidation(string text) => Draw(text) < ValidationFraction;
}

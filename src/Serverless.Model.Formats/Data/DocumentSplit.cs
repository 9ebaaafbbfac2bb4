using System.Text;

namespace Serverless.Model.Data;

/// <summary>Where a document goes.</summary>
public enum SplitPart
{
    /// <summary>Trained on.</summary>
    Train,

    /// <summary>Watched while training: early stopping and the choice of the best weights.</summary>
    Validation,

    /// <summary>Held out until the end: every reported score, the gate and the champion comparison.</summary>
    Test,
}

/// <summary>
/// Decides train, validation or test per document from the document's content and a seed: the same text always lands
/// in the same part (duplicates never leak across), whatever the file order, and the same seed gives the same split.
/// A draw below <see cref="TestFraction"/> is test, below <see cref="TestFraction"/> + <see cref="ValidationFraction"/>
/// validation, the rest train.
/// </summary>
/// <param name="seed">The split seed.</param>
/// <param name="validationFraction">The share of documents for validation, in (0, 0.5].</param>
/// <param name="testFraction">The share of documents for test, in (0, 0.5].</param>
public sealed class DocumentSplit(long seed, double validationFraction, double testFraction)
{
    /// <summary>The split seed.</summary>
    public long Seed { get; } = seed;

    /// <summary>The share of documents for validation.</summary>
    public double ValidationFraction { get; } = validationFraction is > 0 and <= 0.5
        ? validationFraction
        : throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "The validation fraction must be in (0, 0.5].");

    /// <summary>The share of documents for test.</summary>
    public double TestFraction { get; } = testFraction is > 0 and <= 0.5
        ? testFraction
        : throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "The test fraction must be in (0, 0.5].");

    /// <summary>A uniform number in [0, 1) for this document.</summary>
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

    /// <summary>The part a draw falls in.</summary>
    public SplitPart PartOf(double draw) => draw < TestFraction ? SplitPart.Test : draw < TestFraction + ValidationFraction ? SplitPart.Validation : SplitPart.Train;

    /// <summary>The part the document goes to (before the preparer makes sure no part is empty).</summary>
    public SplitPart PartOf(string text) => PartOf(Draw(text));
}

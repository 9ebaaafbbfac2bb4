using System.Text;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Data;

/// <summary>What preparing a dataset produced.</summary>
/// <param name="Documents">Documents read.</param>
/// <param name="TrainDocuments">Documents in the training split.</param>
/// <param name="ValidationDocuments">Documents in the validation split (early stopping, best weights).</param>
/// <param name="TrainTokens">Tokens in <c>train.bin</c>.</param>
/// <param name="ValidationTokens">Tokens in <c>val.bin</c>.</param>
/// <param name="TrainBytes">UTF-8 bytes of the training text.</param>
/// <param name="ValidationBytes">UTF-8 bytes of the validation text.</param>
/// <param name="TestDocuments">Documents in the test split (every reported score).</param>
/// <param name="TestTokens">Tokens in <c>test.bin</c>.</param>
/// <param name="TestBytes">UTF-8 bytes of the test text (for bits per byte).</param>
public sealed record PreparedDataset(
    long Documents, long TrainDocuments, long ValidationDocuments, long TrainTokens, long ValidationTokens, long TrainBytes, long ValidationBytes,
    long TestDocuments = 0, long TestTokens = 0, long TestBytes = 0)
{
    /// <summary><c>text</c>, <c>image</c> or <c>audio</c> (for images the byte counts are sub-pixel values, for audio samples).</summary>
    public string Modality { get; init; } = Media.Modality.Text;

    /// <summary>The class names the tokens use, in token order (image and audio datasets with class folders); null otherwise.</summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>
    /// The bytes bits per byte divides by: the test text's UTF-8 bytes plus one for each end-of-text the evaluation
    /// predicts (the separator before every document but the first — the first token is never a target). Those
    /// targets' nats are in the loss, so they count, as the newline between two documents would. With the byte
    /// tokenizer every target is then exactly one byte, and bits per byte is the loss in bits.
    /// </summary>
    public long ScoredTestBytes => TestBytes + Math.Max(0, TestDocuments - 1);

    /// <summary>As <see cref="ScoredTestBytes"/>, for the validation split.</summary>
    public long ScoredValidationBytes => ValidationBytes + Math.Max(0, ValidationDocuments - 1);
}

/// <summary>
/// Validates dataset files, splits their documents three ways and tokenizes them into <c>train.bin</c>, <c>val.bin</c>
/// and <c>test.bin</c> shards, streaming: memory stays flat however large the data. Each document is preceded by
/// end-of-text, as llm.c does. Nothing is written unless every file is valid. No part is ever empty: a small dataset
/// whose draws leave one empty gets, deterministically, the document whose draw lies nearest to that part's range.
/// </summary>
public sealed class DatasetPreparer(IDocumentSource source, DocumentSplit split)
{
    /// <summary>A text preparer: <paramref name="reader"/>'s documents tokenized by <paramref name="tokenizer"/>.</summary>
    public DatasetPreparer(DatasetReader reader, ITextTokenizer tokenizer, DocumentSplit split)
        : this(new TextDocumentSource(reader, tokenizer), split)
    {
    }

    /// <summary>The fewest documents a dataset may have: one for each part.</summary>
    public const int MinimumDocuments = 3;

    // Draws kept to fill an empty part; past this many documents an empty part means the fractions are too small.
    private const int KeptDraws = 4096;

    /// <summary>The training shard's file name.</summary>
    public const string TrainFile = "train.bin";

    /// <summary>The validation shard's file name.</summary>
    public const string ValidationFile = "val.bin";

    /// <summary>The test shard's file name.</summary>
    public const string TestFile = "test.bin";

    /// <summary>Checks every file; the errors list every problem found (up to the collector's cap).</summary>
    public DatasetErrors Validate(IReadOnlyList<string> files, int maxErrors = 100) => Scan(files, maxErrors).Errors;

    /// <summary>
    /// Validates, then writes the shards into <paramref name="outputDirectory"/>; throws
    /// <see cref="DatasetValidationException"/> listing every problem when any file is invalid.
    /// </summary>
    public PreparedDataset Prepare(IReadOnlyList<string> files, string outputDirectory)
    {
        var scan = Scan(files, maxErrors: 100);
        if (scan.Errors.Any)
        {
            throw new DatasetValidationException(scan.Errors);
        }

        Directory.CreateDirectory(outputDirectory);
        using var train = new TokenShardWriter(Path.Combine(outputDirectory, TrainFile));
        using var validation = new TokenShardWriter(Path.Combine(outputDirectory, ValidationFile));
        using var test = new TokenShardWriter(Path.Combine(outputDirectory, TestFile));
        var documentsIn = new long[3];
        var bytesIn = new long[3];
        long documents = 0;
        var ignored = new DatasetErrors();
        var eot = new[] { source.EndOfText };
        foreach (var document in files.SelectMany(f => source.Read(f, ignored)))
        {
            var part = scan.Moved.TryGetValue(documents, out var moved) ? moved : split.PartOf(document.SplitKey);
            var writer = part switch { SplitPart.Test => test, SplitPart.Validation => validation, _ => train };
            writer.Write(eot);
            writer.Write(document.Tokens().ToArray());
            documentsIn[(int)part]++;
            bytesIn[(int)part] += document.Units;
            documents++;
        }

        train.Complete();
        validation.Complete();
        test.Complete();
        return new PreparedDataset(documents, documentsIn[(int)SplitPart.Train], documentsIn[(int)SplitPart.Validation], train.Count, validation.Count,
            bytesIn[(int)SplitPart.Train], bytesIn[(int)SplitPart.Validation], documentsIn[(int)SplitPart.Test], test.Count, bytesIn[(int)SplitPart.Test])
        {
            Modality = source.Modality,
            Classes = source.Classes,
        };
    }

    private (DatasetErrors Errors, Dictionary<long, SplitPart> Moved) Scan(IReadOnlyList<string> files, int maxErrors)
    {
        ArgumentNullException.ThrowIfNull(files);
        var errors = new DatasetErrors(maxErrors);
        var moved = new Dictionary<long, SplitPart>();
        source.Check(files, errors);
        if (errors.Any)
        {
            return (errors, moved);
        }

        var draws = new List<(long Index, double Draw)>();
        var counts = new long[3];
        long documents = 0;
        foreach (var document in files.SelectMany(f => source.Read(f, errors)))
        {
            var draw = split.Draw(document.SplitKey);
            counts[(int)split.PartOf(draw)]++;
            if (draws.Count < KeptDraws)
            {
                draws.Add((documents, draw));
            }

            documents++;
        }

        if (errors.Any)
        {
            return (errors, moved);
        }

        var name = string.Join(", ", files.Select(Path.GetFileName));
        if (documents < MinimumDocuments)
        {
            errors.Add(new DatasetError(name, null, null,
                $"{documents} document(s) found; at least {MinimumDocuments} are needed, one each for training, validation and test ({source.DocumentHint})."));
            return (errors, moved);
        }

        if (counts.Any(c => c == 0))
        {
            if (documents > KeptDraws)
            {
                var empty = (SplitPart)Array.IndexOf(counts, 0L);
                errors.Add(new DatasetError(name, null, null, $"no document of {documents} drew into the {empty.ToString().ToLowerInvariant()} split; " + empty switch
                {
                    SplitPart.Test => "raise testFraction.",
                    SplitPart.Validation => "raise validationFraction.",
                    _ => "lower validationFraction or testFraction.",
                }));
                return (errors, moved);
            }

            FillEmptyParts(draws, moved);
        }

        return (errors, moved);
    }

    /// <summary>
    /// Gives each empty part one document, taken from the part with the most, choosing the document whose draw lies
    /// nearest the empty part's range (test is lowest, train highest): deterministic, and as close to the draws as can be.
    /// </summary>
    private void FillEmptyParts(List<(long Index, double Draw)> draws, Dictionary<long, SplitPart> moved)
    {
        var parts = draws.ToDictionary(d => d.Index, d => split.PartOf(d.Draw));
        foreach (var empty in new[] { SplitPart.Test, SplitPart.Validation, SplitPart.Train })
        {
            if (parts.ContainsValue(empty))
            {
                continue;
            }

            var donor = parts.Values.GroupBy(p => p).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
            var candidates = draws.Where(d => parts[d.Index] == donor).OrderBy(d => d.Draw).ThenBy(d => d.Index).ToList();
            var nearestBelow = empty == SplitPart.Test || (empty == SplitPart.Validation && donor == SplitPart.Train);
            var chosen = nearestBelow ? candidates[0] : candidates[^1];
            parts[chosen.Index] = empty;
            moved[chosen.Index] = empty;
        }
    }
}

using System.Text;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Data;

/// <summary>What preparing a dataset produced.</summary>
/// <param name="Documents">Documents read.</param>
/// <param name="TrainDocuments">Documents in the training split.</param>
/// <param name="ValidationDocuments">Documents in the validation split.</param>
/// <param name="TrainTokens">Tokens in <c>train.bin</c>.</param>
/// <param name="ValidationTokens">Tokens in <c>val.bin</c>.</param>
/// <param name="TrainBytes">UTF-8 bytes of the training text (for bits per byte).</param>
/// <param name="ValidationBytes">UTF-8 bytes of the validation text.</param>
public sealed record PreparedDataset(
    long Documents, long TrainDocuments, long ValidationDocuments, long TrainTokens, long ValidationTokens, long TrainBytes, long ValidationBytes)
{
    /// <summary>
    /// The bytes bits per byte divides by: the validation text's UTF-8 bytes plus one for each end-of-text the
    /// evaluation predicts (the separator before every document but the first — the first token is never a target).
    /// Those targets' nats are in the loss, so they count, as the newline between two documents would. With the byte
    /// tokenizer every target is then exactly one byte, and bits per byte is the loss in bits.
    /// </summary>
    public long ScoredValidationBytes => ValidationBytes + Math.Max(0, ValidationDocuments - 1);
}

/// <summary>
/// Validates dataset files, splits their documents and tokenizes them into <c>train.bin</c> and <c>val.bin</c>
/// shards, streaming: memory stays flat however large the data. Each document is preceded by end-of-text, as llm.c does.
/// Nothing is written unless every file is valid.
/// </summary>
public sealed class DatasetPreparer(DatasetReader reader, ITextTokenizer tokenizer, DocumentSplit split)
{
    /// <summary>The training shard's file name.</summary>
    public const string TrainFile = "train.bin";

    /// <summary>The validation shard's file name.</summary>
    public const string ValidationFile = "val.bin";

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
        long documents = 0, trainDocuments = 0, validationDocuments = 0, trainBytes = 0, validationBytes = 0;
        var ignored = new DatasetErrors();
        var eot = new[] { tokenizer.EndOfText };
        foreach (var document in files.SelectMany(f => reader.Read(f, ignored)))
        {
            var toValidation = !scan.AnyValidation ? documents == scan.Lowest
                : !scan.AnyTrain ? documents != scan.Highest
                : split.IsValidation(document.Text);
            var writer = toValidation ? validation : train;
            writer.Write(eot);
            writer.Write(tokenizer.Encode(document.Text).ToArray());
            var bytes = Encoding.UTF8.GetByteCount(document.Text);
            if (toValidation)
            {
                validationDocuments++;
                validationBytes += bytes;
            }
            else
            {
                trainDocuments++;
                trainBytes += bytes;
            }

            documents++;
        }

        train.Complete();
        validation.Complete();
        return new PreparedDataset(documents, trainDocuments, validationDocuments, train.Count, validation.Count, trainBytes, validationBytes);
    }

    private (DatasetErrors Errors, bool AnyValidation, long Lowest, bool AnyTrain, long Highest) Scan(IReadOnlyList<string> files, int maxErrors)
    {
        ArgumentNullException.ThrowIfNull(files);
        var errors = new DatasetErrors(maxErrors);
        long documents = 0;

        // Tiny datasets may draw all one way: then the lowest draw is held out, or the highest trained on, so neither split is empty.
        var (lowest, lowestDraw) = (-1L, double.MaxValue);
        var (highest, highestDraw) = (-1L, double.MinValue);
        var (anyValidation, anyTrain) = (false, false);
        foreach (var document in files.SelectMany(f => reader.Read(f, errors)))
        {
            var draw = split.Draw(document.Text);
            anyValidation |= draw < split.ValidationFraction;
            anyTrain |= draw >= split.ValidationFraction;
            if (draw < lowestDraw)
            {
                (lowest, lowestDraw) = (documents, draw);
            }

            if (draw > highestDraw)
            {
                (highest, highestDraw) = (documents, draw);
            }

            documents++;
        }

        if (!errors.Any && documents < 2)
        {
            errors.Add(new DatasetError(string.Join(", ", files.Select(Path.GetFileName)), null, null,
                $"{documents} document(s) found; at least 2 are needed to hold one out for validation (separate .txt documents with a blank line)."));
        }

        return (errors, anyValidation, lowest, anyTrain, highest);
    }
}

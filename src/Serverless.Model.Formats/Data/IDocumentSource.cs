using System.Text;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Data;

/// <summary>One document of a dataset, ready to split and tokenize.</summary>
/// <param name="SplitKey">The content the split is drawn from (the same content always lands in the same part).</param>
/// <param name="Units">What the document counts for scores: UTF-8 bytes of text, sub-pixel values of an image, samples of audio.</param>
/// <param name="Tokens">The document's tokens (without the separator the preparer writes before each document).</param>
public sealed record SourceDocument(string SplitKey, long Units, Func<IReadOnlyList<int>> Tokens);

/// <summary>
/// How a modality turns dataset files into documents: text through <see cref="DatasetReader"/> and a text tokenizer,
/// images and audio through <see cref="Media.MediaDocumentSource"/>. The preparer does the rest (split, shards) the same
/// way for all three.
/// </summary>
public interface IDocumentSource
{
    /// <summary>The separator written before every document (end-of-text, or a media model's start token).</summary>
    int EndOfText { get; }

    /// <summary>Says how documents are delimited, for the error when there are too few.</summary>
    string DocumentHint { get; }

    /// <summary>Checks the dataset as a whole (file kinds, class folders) before any file is read.</summary>
    void Check(IReadOnlyList<string> files, DatasetErrors errors);

    /// <summary>The documents of one file; problems go to <paramref name="errors"/>.</summary>
    IEnumerable<SourceDocument> Read(string file, DatasetErrors errors);

    /// <summary>The class names the prepared tokens use, in token order; null for text.</summary>
    IReadOnlyList<string>? Classes { get; }

    /// <summary>The modality: <c>text</c>, <c>image</c> or <c>audio</c>.</summary>
    string Modality { get; }
}

/// <summary>Text: <see cref="DatasetReader"/>'s documents, tokenized by a text tokenizer.</summary>
public sealed class TextDocumentSource(DatasetReader reader, ITextTokenizer tokenizer) : IDocumentSource
{
    /// <inheritdoc />
    public int EndOfText => tokenizer.EndOfText;

    /// <inheritdoc />
    public string DocumentHint => "separate .txt documents with a blank line";

    /// <inheritdoc />
    public IReadOnlyList<string>? Classes => null;

    /// <inheritdoc />
    public string Modality => Media.Modality.Text;

    /// <inheritdoc />
    public void Check(IReadOnlyList<string> files, DatasetErrors errors) => Media.MediaDocumentSource.CheckKinds(files, Modality, errors);

    /// <inheritdoc />
    public IEnumerable<SourceDocument> Read(string file, DatasetErrors errors) =>
        reader.Read(file, errors).Select(d => new SourceDocument(d.Text, Encoding.UTF8.GetByteCount(d.Text), () => tokenizer.Encode(d.Text)));
}

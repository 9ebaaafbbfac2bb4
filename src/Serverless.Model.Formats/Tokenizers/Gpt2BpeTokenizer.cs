using Microsoft.ML.Tokenizers;

namespace Serverless.Model.Tokenizers;

/// <summary>GPT-2's byte-pair encoding (Microsoft.ML.Tokenizers with its GPT-2 data package; nothing downloaded).</summary>
public sealed class Gpt2BpeTokenizer : ITextTokenizer
{
    /// <summary>The name in <c>config.json</c>.</summary>
    public const string TokenizerName = "gpt2";

    /// <summary>GPT-2's vocabulary size.</summary>
    public const int VocabularySize = 50257;

    /// <summary>The id of <c>&lt;|endoftext|&gt;</c>.</summary>
    public const int EndOfTextId = 50256;

    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <inheritdoc />
    public string Name => TokenizerName;

    /// <inheritdoc />
    public int VocabSize => VocabularySize;

    /// <inheritdoc />
    public int EndOfText => EndOfTextId;

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text) =>
        Shared.Value.EncodeToIds(text, considerPreTokenization: true, considerNormalization: false);

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);
}

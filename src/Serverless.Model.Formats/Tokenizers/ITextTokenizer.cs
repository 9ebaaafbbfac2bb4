namespace Serverless.Model.Tokenizers;

/// <summary>Turns text into token ids and back. Implementations are thread-safe.</summary>
public interface ITextTokenizer
{
    /// <summary>The name recorded in a model's <c>config.json</c> (<c>serverless_tokenizer</c>).</summary>
    string Name { get; }

    /// <summary>Number of distinct ids, end-of-text included.</summary>
    int VocabSize { get; }

    /// <summary>The id that separates documents and ends generation.</summary>
    int EndOfText { get; }

    /// <summary>Encodes text; the end-of-text marker in the text is not treated specially.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>Decodes ids to text; end-of-text decodes as <c>&lt;|endoftext|&gt;</c>.</summary>
    string Decode(IEnumerable<int> ids);
}

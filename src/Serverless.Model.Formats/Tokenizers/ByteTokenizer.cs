using System.Text;

namespace Serverless.Model.Tokenizers;

/// <summary>
/// One token per UTF-8 byte (ids 0–255) plus end-of-text (256): no vocabulary to ship, any input encodable.
/// For small models, and later for images and audio.
/// </summary>
public sealed class ByteTokenizer : ITextTokenizer
{
    /// <summary>The name in <c>config.json</c>.</summary>
    public const string TokenizerName = "bytes";

    /// <summary>256 byte values plus end-of-text.</summary>
    public const int VocabularySize = 257;

    /// <summary>The end-of-text id.</summary>
    public const int EndOfTextId = 256;

    private const string EndOfTextMarker = "<|endoftext|>";

    /// <inheritdoc />
    public string Name => TokenizerName;

    /// <inheritdoc />
    public int VocabSize => VocabularySize;

    /// <inheritdoc />
    public int EndOfText => EndOfTextId;

    /// <inheritdoc />
    public IReadOnlyList<int> Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var ids = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            ids[i] = bytes[i];
        }

        return ids;
    }

    /// <inheritdoc />
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        var pending = new List<byte>();
        foreach (var id in ids)
        {
            if (id is >= 0 and < 256)
            {
                pending.Add((byte)id);
                continue;
            }

            Flush();
            text.Append(id == EndOfTextId ? EndOfTextMarker : "\uFFFD");
        }

        Flush();
        return text.ToString();

        void Flush()
        {
            // Invalid sequences (a model can emit any bytes) decode to U+FFFD rather than failing.
            text.Append(Encoding.UTF8.GetString(pending.ToArray()));
            pending.Clear();
        }
    }
}

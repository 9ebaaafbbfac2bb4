using System.Text;
using System.Text.Json;

namespace Serverless.Model.Data;

/// <summary>
/// Reads dataset files into documents, streaming, and reports every problem it finds with file, line and field.
/// <list type="bullet">
/// <item><c>.txt</c>: plain UTF-8 text; documents are separated by one or more blank lines.</item>
/// <item><c>.jsonl</c>: one JSON object per line, with <c>{"text"}</c>, <c>{"prompt","completion"}</c> (rendered as the
/// prompt followed directly by the completion) or <c>{"messages":[{"role","content"}]}</c> (rendered by
/// <see cref="RenderChat"/>). Blank lines are skipped.</item>
/// </list>
/// </summary>
public sealed class DatasetReader
{
    /// <summary>The file extensions read.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".txt", ".jsonl"];

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Creates a reader.</summary>
    /// <param name="maxDocumentBytes">
    /// The longest line, in UTF-8 bytes, and so the longest JSONL record; a <c>.txt</c> document longer than this is cut
    /// into pieces of at most this size at line boundaries, as nanoGPT and <c>run_clm</c> cut long texts. <value>1 MiB</value>.
    /// </param>
    public DatasetReader(int maxDocumentBytes = 1 << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDocumentBytes, 16);
        MaxDocumentBytes = maxDocumentBytes;
    }

    /// <summary>The longest line (and JSONL record), and the size of the pieces a long text document is cut into, in UTF-8 bytes.</summary>
    public int MaxDocumentBytes { get; }

    /// <summary>
    /// The chat template: each message as <c>Role: content</c> on its own line (roles <c>system</c>, <c>user</c>,
    /// <c>assistant</c> written <c>System</c>, <c>User</c>, <c>Assistant</c>).
    /// </summary>
    public static string RenderChat(IEnumerable<(string Role, string Content)> messages) =>
        string.Concat(messages.Select(m => $"{char.ToUpperInvariant(m.Role[0])}{m.Role[1..]}: {m.Content}\n"));

    /// <summary>Reads the file at <paramref name="path"/>; problems go to <paramref name="errors"/>, documents are yielded.</summary>
    /// <param name="path">The file to read.</param>
    /// <param name="errors">Where problems are recorded.</param>
    /// <param name="displayName">The name used in errors (default: the file name).</param>
    public IEnumerable<DatasetDocument> Read(string path, DatasetErrors errors, string? displayName = null)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var name = displayName ?? Path.GetFileName(path);
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (!Extensions.Contains(extension))
        {
            errors.Add(new DatasetError(name, null, null, $"unsupported file type '{extension}'; use .txt (plain text) or .jsonl (one JSON object per line)."));
            return [];
        }

        return extension == ".txt" ? ReadText(path, name, errors) : ReadJsonLines(path, name, errors);
    }

    private IEnumerable<(long Line, string Text)> ReadLines(string path, string name, DatasetErrors errors)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        if (stream.Length == 0)
        {
            errors.Add(new DatasetError(name, null, null, "the file is empty."));
            yield break;
        }

        Span<byte> head = stackalloc byte[4];
        var headLength = stream.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        if (Sniff(head[..headLength]) is { } problem)
        {
            errors.Add(new DatasetError(name, null, null, problem));
            yield break;
        }

        stream.Position = headLength >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF ? 3 : 0;
        var reader = new ByteLineReader(stream, MaxDocumentBytes);
        var anyText = false;
        while (reader.TryReadLine(out var bytes, out var tooLong))
        {
            var line = reader.LineNumber;
            if (tooLong)
            {
                errors.Add(new DatasetError(name, line, null, name.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
                    ? $"the line is longer than {MaxDocumentBytes} bytes, the longest JSONL record accepted; split the record into several."
                    : $"the line is longer than {MaxDocumentBytes} bytes, the longest line accepted (a text document may be any length); break the line into shorter ones."));
                continue;
            }

            if (bytes.IndexOf((byte)0) is var nul and >= 0)
            {
                errors.Add(new DatasetError(name, line, null, $"binary data (a NUL byte at column {nul + 1}); dataset files must be UTF-8 text."));
                yield break;
            }

            string text;
            try
            {
                text = StrictUtf8.GetString(bytes);
            }
            catch (DecoderFallbackException e)
            {
                var column = e.Index >= 0 ? $" at byte {e.Index + 1}" : "";
                errors.Add(new DatasetError(name, line, null, $"invalid UTF-8{column}; save the file as UTF-8."));
                continue;
            }

            anyText |= !string.IsNullOrWhiteSpace(text);
            yield return (line, text);
        }

        if (!anyText && !errors.Items.Any(e => e.File == name))
        {
            errors.Add(new DatasetError(name, null, null, "the file contains only whitespace."));
        }
    }

    private static string? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 2 && ((head[0] == 0xFF && head[1] == 0xFE) || (head[0] == 0xFE && head[1] == 0xFF)))
        {
            return "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8.";
        }

        if (head.Length >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4)
        {
            return "the file is a zip archive, not text; unpack it and upload the .txt or .jsonl files inside.";
        }

        if (head.Length >= 2 && head[0] == 0x1F && head[1] == 0x8B)
        {
            return "the file is gzip-compressed, not text; decompress it first.";
        }

        return null;
    }

    /// <summary>
    /// Documents separated by blank lines. One longer than <see cref="MaxDocumentBytes"/> (a book with no blank lines,
    /// a corpus of one sentence per line) is streamed and cut at line boundaries into pieces of at most that size, each
    /// its own document: memory stays bounded, and nothing is refused for its length.
    /// </summary>
    private IEnumerable<DatasetDocument> ReadText(string path, string name, DatasetErrors errors)
    {
        var document = new StringBuilder();
        var documentBytes = 0L;
        var startLine = 0L;
        foreach (var (line, text) in ReadLines(path, name, errors))
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                if (Finish() is { } done)
                {
                    yield return done;
                }

                continue;
            }

            var lineBytes = Encoding.UTF8.GetByteCount(text) + 1;
            if (documentBytes + lineBytes > MaxDocumentBytes && Finish() is { } piece)
            {
                yield return piece;
            }

            if (document.Length == 0)
            {
                startLine = line;
            }

            documentBytes += lineBytes;
            document.Append(text).Append('\n');
        }

        if (Finish() is { } last)
        {
            yield return last;
        }

        DatasetDocument? Finish()
        {
            DatasetDocument? result = document.Length > 0 ? new DatasetDocument(document.ToString(), name, startLine) : null;
            document.Clear();
            documentBytes = 0;
            return result;
        }
    }

    private IEnumerable<DatasetDocument> ReadJsonLines(string path, string name, DatasetErrors errors)
    {
        foreach (var (line, text) in ReadLines(path, name, errors))
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            if (ParseRecord(text, name, line, errors) is { } document)
            {
                yield return document;
            }
        }
    }

    private static DatasetDocument? ParseRecord(string text, string name, long line, DatasetErrors errors)
    {
        JsonDocument json;
        try
        {
            json = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            var column = e.BytePositionInLine is { } p ? $" at column {p + 1}" : "";
            errors.Add(new DatasetError(name, line, null, $"malformed JSON{column}: {FirstSentence(e.Message)}"));
            return null;
        }

        using (json)
        {
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new DatasetError(name, line, null, $"expected a JSON object, found {Describe(root.ValueKind)}."));
                return null;
            }

            string? rendered;
            if (root.TryGetProperty("text", out var textElement))
            {
                rendered = String(textElement, "text");
            }
            else if (root.TryGetProperty("prompt", out var prompt) | root.TryGetProperty("completion", out var completion))
            {
                if (prompt.ValueKind == JsonValueKind.Undefined || completion.ValueKind == JsonValueKind.Undefined)
                {
                    errors.Add(new DatasetError(name, line, prompt.ValueKind == JsonValueKind.Undefined ? "prompt" : "completion",
                        "is missing; a prompt/completion record needs both fields."));
                    return null;
                }

                var p = String(prompt, "prompt");
                var c = String(completion, "completion");
                rendered = p is null || c is null ? null : p + c;
            }
            else if (root.TryGetProperty("messages", out var messages))
            {
                rendered = Chat(messages);
            }
            else
            {
                var found = string.Join(", ", root.EnumerateObject().Select(p => $"\"{p.Name}\"").Take(5));
                errors.Add(new DatasetError(name, line, null,
                    $"none of the known fields: expected \"text\", \"prompt\" + \"completion\", or \"messages\"; found {(found.Length == 0 ? "no fields" : found)}."));
                return null;
            }

            if (rendered is null)
            {
                return null;
            }

            if (string.IsNullOrWhiteSpace(rendered))
            {
                errors.Add(new DatasetError(name, line, null, "the record's text is empty."));
                return null;
            }

            return new DatasetDocument(rendered, name, line);
        }

        string? String(JsonElement element, string field)
        {
            if (element.ValueKind == JsonValueKind.String)
            {
                try
                {
                    return element.GetString();
                }
                catch (InvalidOperationException)
                {
                    errors.Add(new DatasetError(name, line, field, "is not valid text: it has a lone UTF-16 surrogate escape (\\uD800–\\uDFFF without its pair)."));
                    return null;
                }
            }

            errors.Add(new DatasetError(name, line, field, $"must be a string, found {Describe(element.ValueKind)}."));
            return null;
        }

        string? Chat(JsonElement messages)
        {
            if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            {
                errors.Add(new DatasetError(name, line, "messages",
                    messages.ValueKind == JsonValueKind.Array ? "is empty." : $"must be an array of {{\"role\", \"content\"}} objects, found {Describe(messages.ValueKind)}."));
                return null;
            }

            var turns = new List<(string, string)>();
            var index = 0;
            foreach (var message in messages.EnumerateArray())
            {
                var field = $"messages[{index++}]";
                if (message.ValueKind != JsonValueKind.Object
                    || !message.TryGetProperty("role", out var role) || !message.TryGetProperty("content", out var content))
                {
                    errors.Add(new DatasetError(name, line, field, "must be an object with \"role\" and \"content\"."));
                    return null;
                }

                var r = String(role, field + ".role");
                var c = String(content, field + ".content");
                if (r is null || c is null)
                {
                    return null;
                }

                if (r is not ("system" or "user" or "assistant"))
                {
                    errors.Add(new DatasetError(name, line, field + ".role", $"is \"{r}\"; expected \"system\", \"user\" or \"assistant\"."));
                    return null;
                }

                turns.Add((r, c));
            }

            return RenderChat(turns);
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}

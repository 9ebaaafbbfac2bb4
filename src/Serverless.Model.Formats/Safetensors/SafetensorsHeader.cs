using System.Text.Json;

namespace Serverless.Model.Safetensors;

/// <summary>
/// The validated header of a safetensors file. Reading it never trusts the file: the header length, every dtype,
/// shape and offset are checked against the file's real size before a single tensor byte is allocated, and a
/// Python pickle (which could run code when loaded) is refused outright.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>The largest header we read. Real headers are kilobytes; this bounds memory for hostile files.</summary>
    public const long MaxHeaderBytes = 16L << 20;

    private static readonly Dictionary<string, int> ElementSizes = new(StringComparer.Ordinal)
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2,
        ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    private SafetensorsHeader(IReadOnlyDictionary<string, SafetensorsEntry> tensors, IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        Tensors = tensors;
        Metadata = metadata;
        DataStart = dataStart;
    }

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Tensors { get; }

    /// <summary>The <c>__metadata__</c> strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>File offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    /// <summary>Bytes per element of a safetensors dtype, or null for a dtype we do not know.</summary>
    public static int? ElementSize(string dtype) => ElementSizes.TryGetValue(dtype, out var size) ? size : null;

    /// <summary>Reads and validates the header of the file at <paramref name="path"/>.</summary>
    public static SafetensorsHeader Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads and validates the header at the start of <paramref name="stream"/> (which must be seekable).</summary>
    public static SafetensorsHeader Read(Stream stream, string displayName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var fileLength = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        var got = stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false);
        RefuseKnownNonSafetensors(prefix[..got], displayName);
        if (got < 8)
        {
            throw Bad(displayName, $"is truncated: {fileLength} bytes, but a safetensors file starts with an 8-byte header length.");
        }

        var headerLength = BitConverter.ToUInt64(prefix);
        if (headerLength > (ulong)(fileLength - 8))
        {
            throw Bad(displayName, $"declares a {headerLength}-byte header, past the end of the file ({fileLength} bytes): the file is truncated or not safetensors.");
        }

        if (headerLength > MaxHeaderBytes)
        {
            throw Bad(displayName, $"declares a {headerLength}-byte header; the most we accept is {MaxHeaderBytes} bytes.");
        }

        if (headerLength < 2)
        {
            throw Bad(displayName, $"declares a {headerLength}-byte header; a safetensors header is a JSON object.");
        }

        var json = new byte[headerLength];
        stream.ReadExactly(json);
        if (json[0] != (byte)'{')
        {
            throw Bad(displayName, "has a header that is not a JSON object (it must start with '{').");
        }

        var dataStart = 8 + (long)headerLength;
        return Parse(json, fileLength - dataStart, dataStart, displayName);
    }

    private static void RefuseKnownNonSafetensors(ReadOnlySpan<byte> prefix, string displayName)
    {
        // PyTorch's torch.save writes a zip archive (PK\x03\x04) of pickles; older versions a bare pickle (\x80, protocol 2–5).
        var isZip = prefix.Length >= 4 && prefix[0] == (byte)'P' && prefix[1] == (byte)'K' && prefix[2] == 3 && prefix[3] == 4;
        var isPickle = prefix.Length >= 2 && prefix[0] == 0x80 && prefix[1] is >= 2 and <= 5;
        if (isZip || isPickle)
        {
            throw Bad(displayName,
                "is a PyTorch pickle (.bin/.pt format), not safetensors. Pickles can run code when loaded, so they are never loaded here. " +
                "Convert it to model.safetensors first (for example with Hugging Face's safetensors convert tool, on a machine you trust).");
        }
    }

    private static SafetensorsHeader Parse(byte[] json, long dataLength, long dataStart, string displayName)
    {
        try
        {
            _ = StrictUtf8.GetCharCount(json);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw Bad(displayName, $"has a header that is not valid UTF-8 (at byte {e.Index + 8}).");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw Bad(displayName, $"has a header that is not valid JSON: {e.Message}");
        }

        using (document)
        {
            try
            {
                return Entries(document, dataLength, dataStart, displayName);
            }
            catch (InvalidOperationException e)
            {
                // A string JSON cannot turn into text, such as an escaped lone surrogate ("\ud800").
                throw Bad(displayName, $"has a header with a string that is not valid text: {e.Message}");
            }
        }
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static SafetensorsHeader Entries(JsonDocument document, long dataLength, long dataStart, string displayName)
    {
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Bad(displayName, "has a header that is not a JSON object.");
            }

            var tensors = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    ReadMetadata(property.Value, metadata, displayName);
                    continue;
                }

                if (tensors.ContainsKey(property.Name))
                {
                    throw Bad(displayName, $"names tensor '{property.Name}' twice.");
                }

                tensors.Add(property.Name, ReadEntry(property.Name, property.Value, dataLength, displayName));
            }

            CheckNoOverlap(tensors.Values, displayName);
            return new SafetensorsHeader(tensors, metadata, dataStart);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string displayName)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Bad(displayName, "has a __metadata__ entry that is not an object of strings.");
        }

        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw Bad(displayName, $"has __metadata__ value '{item.Name}' that is not a string.");
            }

            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static SafetensorsEntry ReadEntry(string name, JsonElement value, long dataLength, string displayName)
    {
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array)
        {
            throw Bad(displayName, $"describes tensor '{name}' without the required dtype (string), shape (array) and data_offsets (array).");
        }

        var dtype = dtypeElement.GetString()!;
        var elementSize = ElementSize(dtype)
            ?? throw Bad(displayName, $"gives tensor '{name}' the unknown dtype '{dtype}' (known: {string.Join(", ", ElementSizes.Keys)}).");

        var shape = new long[shapeElement.GetArrayLength()];
        var i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d) || d < 0)
            {
                throw Bad(displayName, $"gives tensor '{name}' a shape with '{dim.GetRawText()}', not a non-negative integer.");
            }

            shape[i++] = d;
        }

        if (offsetsElement.GetArrayLength() != 2)
        {
            throw Bad(displayName, $"gives tensor '{name}' data_offsets with {offsetsElement.GetArrayLength()} numbers; it needs [begin, end].");
        }

        var offsets = offsetsElement.EnumerateArray().Select(o => o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out var v) ? v : -1).ToArray();
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin < 0 || end < begin || end > dataLength)
        {
            throw Bad(displayName,
                $"gives tensor '{name}' data_offsets [{offsetsElement[0].GetRawText()}, {offsetsElement[1].GetRawText()}] outside the data section (0 to {dataLength} bytes).");
        }

        long bytes;
        try
        {
            bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * elementSize);
        }
        catch (OverflowException)
        {
            throw Bad(displayName, $"gives tensor '{name}' shape {FormatShape(shape)}, whose size overflows.");
        }

        if (bytes != end - begin)
        {
            throw Bad(displayName,
                $"gives tensor '{name}' shape {FormatShape(shape)} of {dtype} ({bytes} bytes), but its data_offsets span {end - begin} bytes.");
        }

        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    private static void CheckNoOverlap(IEnumerable<SafetensorsEntry> entries, string displayName)
    {
        SafetensorsEntry? previous = null;
        foreach (var entry in entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin))
        {
            if (previous is not null && entry.Begin < previous.End)
            {
                throw Bad(displayName,
                    $"has overlapping tensors: '{previous.Name}' [{previous.Begin}, {previous.End}) and '{entry.Name}' [{entry.Begin}, {entry.End}).");
            }

            previous = entry;
        }
    }

    /// <summary>Formats a shape as <c>[a, b]</c>.</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    private static ModelFormatException Bad(string displayName, string problem) => new($"{displayName} {problem}");

    internal static byte[] Serialize(IReadOnlyList<(string Name, string DType, long[] Shape, long Bytes)> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("__metadata__");
            foreach (var (key, value) in metadata)
            {
                writer.WriteString(key, value);
            }

            writer.WriteEndObject();
            long offset = 0;
            foreach (var (name, dtype, shape, bytes) in tensors)
            {
                writer.WriteStartObject(name);
                writer.WriteString("dtype", dtype);
                writer.WriteStartArray("shape");
                foreach (var d in shape)
                {
                    writer.WriteNumberValue(d);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + bytes);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += bytes;
            }

            writer.WriteEndObject();
        }

        // The format recommends padding the header with spaces to a multiple of 8 so the data is aligned.
        var json = buffer.ToArray();
        var padded = (json.Length + 7) / 8 * 8;
        var header = new byte[padded];
        json.CopyTo(header, 0);
        header.AsSpan(json.Length).Fill((byte)' ');
        return header;
    }

}

using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Safetensors;

/// <summary>
/// Reads and writes safetensors files. Reading validates the header first (<see cref="SafetensorsHeader"/>), then
/// lets TorchSharp.PyBridge read the tensors. Writing is ours: PyBridge's writer leaves out the
/// <c>__metadata__ {"format": "pt"}</c> that Hugging Face's loader checks and the 8-byte header alignment the format
/// recommends.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>Loads the named tensors (all when <paramref name="names"/> is null) in the file's own dtypes.</summary>
    public static Dictionary<string, Tensor> Load(string path, SafetensorsHeader header, IReadOnlyCollection<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(header);
        using var stream = File.OpenRead(path);
        try
        {
            return TorchSharp.PyBridge.Safetensors.LoadStateDict(stream, leaveOpen: false, keysToKeep: names?.ToList());
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or NotImplementedException or System.Text.Json.JsonException)
        {
            throw new ModelFormatException($"{path} could not be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> in the given order, atomically (a temporary file renamed into place), with
    /// <c>__metadata__</c> <c>{"format": "pt"}</c>.
    /// </summary>
    public static void Save(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        // New handles (on the CPU, contiguous) that this method owns and disposes; the callers' tensors are untouched.
        var contiguous = tensors.Select(t => (t.Name, Tensor: t.Tensor.device_type == DeviceType.CPU ? t.Tensor.contiguous() : t.Tensor.cpu().contiguous())).ToList();
        try
        {
            var described = contiguous
                .Select(t => (t.Name, DTypeName(t.Tensor.dtype), t.Tensor.shape, t.Tensor.numel() * t.Tensor.ElementSize))
                .ToList();
            var header = SafetensorsHeader.Serialize(described, new Dictionary<string, string> { ["format"] = "pt" });
            var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
            try
            {
                using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    stream.Write(BitConverter.GetBytes((ulong)header.Length));
                    stream.Write(header);
                    foreach (var (_, tensor) in contiguous)
                    {
                        stream.Write(tensor.bytes);
                    }

                    stream.Flush(flushToDisk: true);
                }

                File.Move(temp, path, overwrite: true);
            }
            finally
            {
                File.Delete(temp);
            }
        }
        finally
        {
            foreach (var (_, tensor) in contiguous)
            {
                tensor.Dispose();
            }
        }
    }

    private static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"dtype {dtype} has no safetensors name.", nameof(dtype)),
    };
}

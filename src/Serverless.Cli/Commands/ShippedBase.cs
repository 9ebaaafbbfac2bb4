using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary>
/// The text demo's base model, pre-trained offline by <c>tools/pretrain-demo-base.sh</c> and shipped in the repository
/// (<c>data/demo/demo-base.tar.gz</c>, embedded in <c>tune</c>): a Hugging Face GPT-2 model directory plus the
/// <c>pretraining.json</c> that says how it was made.
/// </summary>
internal static class ShippedBase
{
    public const string ResourceName = "demo-base.tar.gz";

    private static readonly JsonSerializerOptions ReadOptions = new(JsonSerializerDefaults.Web);

    /// <summary>Unpacks <paramref name="archive"/> (tar.gz) into <paramref name="directory"/>: into a temporary folder first, then moved, so a half-written base is never seen.</summary>
    public static PretrainingResult Install(Stream archive, string directory)
    {
        ArgumentNullException.ThrowIfNull(archive);
        using var owned = archive;
        var prefix = Path.GetFileName(directory.TrimEnd('/', '\\')) + ".tmp-";
        var parent = Path.GetDirectoryName(directory.TrimEnd('/', '\\'))!;
        Directory.CreateDirectory(parent);
        foreach (var stale in Directory.EnumerateDirectories(parent, prefix + "*"))
        {
            Directory.Delete(stale, recursive: true);   // left by an install that was killed
        }

        var temp = Path.Combine(parent, prefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(temp);
        try
        {
            using (var gzip = new GZipStream(archive, CompressionMode.Decompress))
            {
                TarFile.ExtractToDirectory(gzip, temp, overwriteFiles: true);
            }

            foreach (var required in new[] { "config.json", "model.safetensors", "pretraining.json" })
            {
                if (!File.Exists(Path.Combine(temp, required)))
                {
                    throw new InvalidDataException($"The shipped demo base has no {required}; rebuild data/demo/{ResourceName} with tools/pretrain-demo-base.sh.");
                }
            }

            var result = JsonSerializer.Deserialize<PretrainingResult>(File.ReadAllText(Path.Combine(temp, "pretraining.json")), ReadOptions)!;
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            Directory.Move(temp, directory);
            return result;
        }
        finally
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }
        }
    }
}

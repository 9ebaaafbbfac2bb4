using System.IO.Compression;

namespace Serverless.Cli.Commands;

/// <summary>
/// Gives the dataset readers plain files: gzipped inputs (<c>x.txt.gz</c>) are decompressed into a work folder,
/// streaming, removed when disposed. Embedded demo corpora are written out the same way.
/// </summary>
internal sealed class CorpusFiles(string workDirectory) : IDisposable
{
    public IReadOnlyList<string> Materialize(IEnumerable<FileInfo> files) =>
        files.Select(f =>
        {
            if (!f.Exists)
            {
                throw new CliException($"{f.FullName} does not exist.");
            }

            return f.Extension == ".gz" ? Write(Path.GetFileNameWithoutExtension(f.Name), () => f.OpenRead()) : f.FullName;
        }).ToList();

    public string Write(string name, Func<Stream> gzipped)
    {
        Directory.CreateDirectory(workDirectory);
        var path = Path.Combine(workDirectory, name);
        using var source = new GZipStream(gzipped(), CompressionMode.Decompress);
        using var target = File.Create(path);
        source.CopyTo(target);
        return path;
    }

    public void Dispose()
    {
        if (Directory.Exists(workDirectory))
        {
            Directory.Delete(workDirectory, recursive: true);
        }
    }
}

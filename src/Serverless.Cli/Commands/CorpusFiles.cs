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

    /// <summary>
    /// Files and folders given on the command line: a folder stands for every dataset file under it (recursively, in
    /// name order), and when exactly one folder is given it is the root whose sub-folders are classes (images, audio).
    /// </summary>
    public (IReadOnlyList<string> Files, string? Root) MaterializePaths(IEnumerable<string> paths)
    {
        var given = paths.ToList();
        var folders = given.Where(Directory.Exists).ToList();
        var files = new List<string>();
        foreach (var path in given)
        {
            if (Directory.Exists(path))
            {
                var found = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => Serverless.Model.Media.Modality.OfFile(f) is not null || f.EndsWith(".gz", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal).ToList();
                if (found.Count == 0)
                {
                    throw new CliException($"{path} holds no dataset files (.txt, .jsonl, .png, .jpg, .jpeg, .wav).");
                }

                files.AddRange(Materialize(found.Select(f => new FileInfo(f))));
            }
            else
            {
                files.AddRange(Materialize([new FileInfo(path)]));
            }
        }

        return (files, folders.Count == 1 && given.Count == 1 ? Path.GetFullPath(folders[0]) : null);
    }

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

using System.Runtime.CompilerServices;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Embedded.Blobs;

/// <summary>
/// Blob storage in a folder: <c>{root}/{container}/{name}</c>. Writes go to a temporary file that is renamed into
/// place, so readers see whole versions only. The ETag is the file's modification time and length; a write always
/// moves the time forward, so every replacement gets a new ETag. Conditional writes and deletes check and replace
/// under a per-container lock file, which also serializes separate processes (<c>tune up</c> and its trainers).
/// Names are validated by <see cref="BlobNames"/>, so no name can reach outside the root.
/// </summary>
public sealed class FolderBlobStore : IBlobStore
{
    private const string TempMarker = ".tmp-";
    private const string LockFile = ".lock";
    private readonly string _root;

    /// <summary>Stores blobs under <paramref name="root"/> (created if needed).</summary>
    public FolderBlobStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    /// <summary>The root folder.</summary>
    public string Root => _root;

    /// <summary>The file behind a blob (for tools that need a path, such as the trainer reading a model).</summary>
    public string PathOf(string container, string name)
    {
        var path = Path.GetFullPath(Path.Combine(_root, BlobNames.Container(container), BlobNames.Blob(name)));
        var containerRoot = Path.Combine(_root, container) + Path.DirectorySeparatorChar;
        return path.StartsWith(containerRoot, StringComparison.Ordinal)
            ? path
            : throw new ArgumentException($"Blob name '{name}' resolves outside its container.", nameof(name));
    }

    /// <inheritdoc />
    public Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(Item(container, name, new FileInfo(PathOf(container, name))));

    /// <inheritdoc />
    public Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default)
    {
        var path = PathOf(container, name);
        try
        {
            // An open handle keeps reading the version it opened even if a writer renames a new one into place.
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, useAsync: false);
            // The ETag of what the handle reads, not of the path: a writer may have renamed a newer version into place
            // since the open, and pairing old content with the new ETag would let a conditional write lose an update.
            var modified = File.GetLastWriteTimeUtc(stream.SafeFileHandle);
            var item = new BlobItem(container, name, ETagOf(modified, stream.Length), stream.Length, new DateTimeOffset(modified, TimeSpan.Zero));
            return Task.FromResult<(Stream, BlobItem)?>((stream, item));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<(Stream, BlobItem)?>(null);
        }
    }

    /// <inheritdoc />
    public async Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var path = PathOf(container, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + TempMarker + Guid.NewGuid().ToString("N");
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await content.CopyToAsync(file, cancellationToken);
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }

            using (await LockAsync(container, cancellationToken))
            {
                var current = new FileInfo(path);
                Check(container, name, current, condition);
                // Move the modification time past the old one so the ETag changes even within one clock tick.
                var now = DateTime.UtcNow;
                var floor = current.Exists ? current.LastWriteTimeUtc.AddTicks(1) : DateTime.MinValue;
                File.SetLastWriteTimeUtc(temp, now > floor ? now : floor);
                File.Move(temp, path, overwrite: true);
                return Item(container, name, new FileInfo(path))!;
            }
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var root = Path.Combine(_root, BlobNames.Container(container));
        if (!Directory.Exists(root))
        {
            yield break;
        }

        // Start at the deepest folder the prefix names (jobs/recent/, model-registry/m/3/), and there descend only into
        // what the rest of the prefix matches (m/version-): a listing costs what is under its prefix, not the container.
        var slash = prefix.LastIndexOf('/');
        var inFolder = slash > 0 && BlobNames.Problem(prefix[..slash]) is null;
        var folder = inFolder ? Path.Combine(root, prefix[..slash].Replace('/', Path.DirectorySeparatorChar)) : root;
        var rest = inFolder ? prefix[(slash + 1)..] : prefix.Contains('/', StringComparison.Ordinal) ? "" : prefix;
        if (!Directory.Exists(folder))
        {
            yield break;
        }

        var top = new DirectoryInfo(folder);
        var candidates = rest.Length == 0
            ? top.EnumerateFiles("*", SearchOption.AllDirectories)
            : top.EnumerateFileSystemInfos().Where(i => i.Name.StartsWith(rest, StringComparison.Ordinal))
                .SelectMany(i => i is DirectoryInfo d ? d.EnumerateFiles("*", SearchOption.AllDirectories) : [(FileInfo)i]);
        var items = new List<BlobItem>();
        foreach (var file in candidates)
        {
            var name = Path.GetRelativePath(root, file.FullName).Replace(Path.DirectorySeparatorChar, '/');
            if (name.StartsWith(prefix, StringComparison.Ordinal) && !name.Contains(TempMarker, StringComparison.Ordinal)
                && name != LockFile && BlobNames.Problem(name) is null && Item(container, name, file) is { } item)
            {
                items.Add(item);
            }
        }

        foreach (var item in items.OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return item;
        }

        await Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default)
    {
        var path = PathOf(container, name);
        using (await LockAsync(container, cancellationToken))
        {
            var current = new FileInfo(path);
            if (!current.Exists)
            {
                return condition.IfMatch is null ? false : throw new BlobConflictException(container, name, "the blob does not exist (If-Match failed).");
            }

            Check(container, name, current, condition with { IfNotExists = false });
            File.Delete(path);
            return true;
        }
    }

    private static void Check(string container, string name, FileInfo current, BlobCondition condition)
    {
        if (condition.IfNotExists && current.Exists)
        {
            throw new BlobConflictException(container, name, "the blob already exists (If-None-Match: * failed).");
        }

        if (condition.IfMatch is { } expected)
        {
            var actual = current.Exists ? ETagOf(current) : null;
            if (actual != expected)
            {
                throw new BlobConflictException(container, name, actual is null
                    ? "the blob does not exist (If-Match failed)."
                    : $"the blob changed (ETag {actual}, expected {expected}).");
            }
        }
    }

    private static BlobItem? Item(string container, string name, FileInfo file)
    {
        file.Refresh();
        return file.Exists ? new BlobItem(container, name, ETagOf(file), file.Length, new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero)) : null;
    }

    private static string ETagOf(FileInfo file) => ETagOf(file.LastWriteTimeUtc, file.Length);

    private static string ETagOf(DateTime modified, long length) => $"\"{modified.Ticks:x}-{length:x}\"";

    private async Task<IDisposable> LockAsync(string container, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(_root, container);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, LockFile);
        var delay = 1;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException)
            {
                // Held by another writer (this process or another): wait a little and retry.
                await Task.Delay(delay, cancellationToken);
                delay = Math.Min(delay * 2, 20);
            }
        }
    }
}

using System.Security.Cryptography;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Messaging;

/// <summary>Copies blobs to local files and back: the trainer and the tokenizer work on local files.</summary>
public sealed class LocalFiles(IBlobStore blobs)
{
    /// <summary>The store the files come from.</summary>
    public IBlobStore Blobs => blobs;

    /// <summary>
    /// Downloads one blob; false when it does not exist. With <paramref name="reuse"/>, a local copy of the same blob
    /// version (its ETag is kept beside it in <c>{path}.etag</c>) is used as is: models are large and rarely change.
    /// </summary>
    public async Task<bool> DownloadAsync(string container, string name, string path, bool reuse = false, CancellationToken cancellationToken = default)
    {
        var etagPath = path + ".etag";
        if (reuse && File.Exists(path) && File.Exists(etagPath)
            && await blobs.GetAsync(container, name, cancellationToken) is { } current
            && await File.ReadAllTextAsync(etagPath, cancellationToken) == current.ETag)
        {
            return true;
        }

        var opened = await blobs.OpenReadAsync(container, name, cancellationToken);
        if (opened is null)
        {
            return false;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await using var content = opened.Value.Content;
        var temp = path + ".download";
        await using (var file = File.Create(temp))
        {
            await content.CopyToAsync(file, cancellationToken);
        }

        File.Move(temp, path, overwrite: true);
        if (reuse)
        {
            await File.WriteAllTextAsync(etagPath, opened.Value.Item.ETag, cancellationToken);
        }

        return true;
    }

    /// <summary>Downloads every blob under <paramref name="prefix"/> into <paramref name="directory"/>, keeping relative names; returns how many.</summary>
    public async Task<int> DownloadPrefixAsync(string container, string prefix, string directory, CancellationToken cancellationToken = default)
    {
        var count = 0;
        await foreach (var item in blobs.ListAsync(container, prefix, cancellationToken))
        {
            await DownloadAsync(container, item.Name, Path.Combine(directory, item.Name[prefix.Length..]), cancellationToken: cancellationToken);
            count++;
        }

        return count;
    }

    /// <summary>Uploads every file under <paramref name="directory"/> to <paramref name="prefix"/>; <paramref name="last"/> (relative name) goes last.</summary>
    public async Task UploadDirectoryAsync(string directory, string container, string prefix, string? last = null, CancellationToken cancellationToken = default)
    {
        var files = Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(directory, f).Replace(Path.DirectorySeparatorChar, '/'))
            .OrderBy(f => f == last ? 1 : 0).ThenBy(f => f, StringComparer.Ordinal);
        foreach (var relative in files)
        {
            await using var content = File.OpenRead(Path.Combine(directory, relative));
            await blobs.WriteAsync(container, prefix + relative, content, cancellationToken: cancellationToken);
        }
    }

    /// <summary>Hex SHA-256 of a blob's content, streamed.</summary>
    public async Task<string?> Sha256Async(string container, string name, CancellationToken cancellationToken = default)
    {
        var opened = await blobs.OpenReadAsync(container, name, cancellationToken);
        if (opened is null)
        {
            return null;
        }

        await using var content = opened.Value.Content;
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(content, cancellationToken));
    }
}

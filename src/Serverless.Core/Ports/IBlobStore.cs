namespace Serverless.Core.Ports;

/// <summary>A blob as listed or written: its name, entity tag and size.</summary>
/// <param name="Container">The container.</param>
/// <param name="Name">The blob's name inside the container (<c>a/b/c.json</c>).</param>
/// <param name="ETag">Changes whenever the content is replaced.</param>
/// <param name="Length">Size in bytes.</param>
/// <param name="LastModified">When the content was last replaced.</param>
public sealed record BlobItem(string Container, string Name, string ETag, long Length, DateTimeOffset LastModified);

/// <summary>A precondition on a write or delete, as HTTP's If-Match / If-None-Match.</summary>
public readonly record struct BlobCondition
{
    /// <summary>Write only if the blob's current ETag is this one.</summary>
    public string? IfMatch { get; init; }

    /// <summary>Write only if no blob exists under the name (If-None-Match: *).</summary>
    public bool IfNotExists { get; init; }

    /// <summary>No precondition.</summary>
    public static BlobCondition None => default;

    /// <summary>Only if the blob does not exist yet.</summary>
    public static BlobCondition NotExists => new() { IfNotExists = true };

    /// <summary>Only if the blob still has <paramref name="etag"/>.</summary>
    public static BlobCondition Match(string etag) => new() { IfMatch = etag };
}

/// <summary>A write or delete whose condition did not hold: someone else wrote first. The caller re-reads and decides.</summary>
public sealed class BlobConflictException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BlobConflictException(string container, string name, string message) : base($"{container}/{name}: {message}")
    {
        Container = container;
        Name = name;
    }

    /// <summary>Creates the exception.</summary>
    public BlobConflictException() : this("", "", "condition not met")
    {
    }

    /// <summary>Creates the exception.</summary>
    public BlobConflictException(string message) : this("", "", message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public BlobConflictException(string message, Exception inner) : base(message, inner)
    {
        Container = Name = "";
    }

    /// <summary>The container.</summary>
    public string Container { get; }

    /// <summary>The blob's name.</summary>
    public string Name { get; }
}

/// <summary>
/// Blob storage: containers of named blobs with entity tags and conditional writes. The embedded implementation is a
/// folder; the Azure one is Blob Storage. Both pass the same contract suite.
/// </summary>
public interface IBlobStore
{
    /// <summary>The blob's properties, or null when it does not exist.</summary>
    Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default);

    /// <summary>Opens the blob for reading, or returns null when it does not exist. The stream reads one consistent version.</summary>
    Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces (or creates) the blob with <paramref name="content"/>, atomically: readers see the old or the new
    /// content, never a mix. Throws <see cref="BlobConflictException"/> when <paramref name="condition"/> does not hold.
    /// </summary>
    Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default);

    /// <summary>Blobs whose names start with <paramref name="prefix"/>, in ordinal name order.</summary>
    IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", CancellationToken cancellationToken = default);

    /// <summary>Deletes the blob; false when it did not exist. Throws <see cref="BlobConflictException"/> when <paramref name="condition"/> does not hold.</summary>
    Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default);
}

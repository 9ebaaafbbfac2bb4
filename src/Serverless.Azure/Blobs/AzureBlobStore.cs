using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Polly;
using Polly.Retry;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using BlobItem = Serverless.Core.Ports.BlobItem;

namespace Serverless.Azure.Blobs;

/// <summary>
/// <see cref="IBlobStore"/> on Azure Blob Storage. If-Match / If-None-Match map to the service's conditional requests;
/// a 412 or 409 becomes <see cref="BlobConflictException"/>. Transient failures (408, 429, 5xx, network) are retried
/// with exponential backoff and jitter; conflicts never are. Uploads and downloads stream. Containers are created on
/// first use.
/// </summary>
public sealed class AzureBlobStore : IBlobStore
{
    private readonly BlobServiceClient _service;
    private readonly ResiliencePipeline _retry;
    private readonly ConcurrentDictionary<string, Task<BlobContainerClient>> _containers = new();

    /// <summary>Uses <paramref name="service"/> (built from a blob service URI and a credential, or an emulator connection string).</summary>
    public AzureBlobStore(BlobServiceClient service, ResiliencePipeline? retry = null)
    {
        _service = service ?? throw new ArgumentNullException(nameof(service));
        _retry = retry ?? DefaultRetry;
    }

    /// <summary>Retries transient storage failures 4 times, exponential from 200 ms, with jitter.</summary>
    public static ResiliencePipeline DefaultRetry { get; } = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = 4,
            Delay = TimeSpan.FromMilliseconds(200),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            ShouldHandle = new PredicateBuilder().Handle<RequestFailedException>(IsTransient).Handle<HttpRequestException>(),
        })
        .Build();

    /// <summary>Whether a storage error is worth retrying (not a conflict or a client error).</summary>
    public static bool IsTransient(RequestFailedException e) => e?.Status is 408 or 429 or >= 500 or 0;

    /// <inheritdoc />
    public async Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default)
    {
        var blob = (await ContainerAsync(container, cancellationToken)).GetBlobClient(BlobNames.Blob(name));
        try
        {
            var properties = await _retry.ExecuteAsync(async ct => (await blob.GetPropertiesAsync(cancellationToken: ct)).Value, cancellationToken);
            return new BlobItem(container, name, properties.ETag.ToString(), properties.ContentLength, properties.LastModified);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default)
    {
        var blob = (await ContainerAsync(container, cancellationToken)).GetBlobClient(BlobNames.Blob(name));
        try
        {
            var download = await _retry.ExecuteAsync(async ct => (await blob.DownloadStreamingAsync(cancellationToken: ct)).Value, cancellationToken);
            var details = download.Details;
            return (download.Content, new BlobItem(container, name, details.ETag.ToString(), details.ContentLength, details.LastModified));
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public async Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var blob = (await ContainerAsync(container, cancellationToken)).GetBlobClient(BlobNames.Blob(name));
        var options = new BlobUploadOptions { Conditions = Conditions(condition) };
        try
        {
            // A stream can be read once: retry only when it can be rewound.
            var start = content.CanSeek ? content.Position : -1;
            var info = await (content.CanSeek ? _retry : ResiliencePipeline.Empty).ExecuteAsync(async ct =>
            {
                if (start >= 0)
                {
                    content.Position = start;
                }

                return (await blob.UploadAsync(content, options, ct)).Value;
            }, cancellationToken);
            return new BlobItem(container, name, info.ETag.ToString(), content.CanSeek ? content.Length - Math.Max(0, start) : -1, info.LastModified);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw new BlobConflictException(container, name, condition.IfNotExists ? "the blob already exists (If-None-Match: * failed)." : $"the blob changed (If-Match {condition.IfMatch} failed).");
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var client = await ContainerAsync(container, cancellationToken);
        await foreach (var item in client.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            yield return new BlobItem(container, item.Name, item.Properties.ETag?.ToString() ?? "", item.Properties.ContentLength ?? 0,
                item.Properties.LastModified ?? DateTimeOffset.MinValue);
        }
    }

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default)
    {
        var blob = (await ContainerAsync(container, cancellationToken)).GetBlobClient(BlobNames.Blob(name));
        try
        {
            var deleted = await _retry.ExecuteAsync(async ct =>
                (await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, Conditions(condition with { IfNotExists = false }), ct)).Value, cancellationToken);
            return deleted || condition.IfMatch is null ? deleted : throw new BlobConflictException(container, name, "the blob does not exist (If-Match failed).");
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw new BlobConflictException(container, name, $"the blob changed (If-Match {condition.IfMatch} failed).");
        }
    }

    private static BlobRequestConditions? Conditions(BlobCondition condition) =>
        condition.IfNotExists ? new BlobRequestConditions { IfNoneMatch = ETag.All }
        : condition.IfMatch is { } etag ? new BlobRequestConditions { IfMatch = new ETag(etag) }
        : null;

    private Task<BlobContainerClient> ContainerAsync(string container, CancellationToken cancellationToken) =>
        _containers.GetOrAdd(BlobNames.Container(container), async name =>
        {
            var client = _service.GetBlobContainerClient(name);
            await _retry.ExecuteAsync(async ct => await client.CreateIfNotExistsAsync(cancellationToken: ct), cancellationToken);
            return client;
        });
}

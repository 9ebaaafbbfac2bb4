using System.Runtime.CompilerServices;
using Polly;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Resilience;

/// <summary>
/// A blob store whose every call runs through a resilience pipeline (retries, or chaos). A write is repeated only from
/// the content's start: seekable content is rewound, other content is never sent twice. A listing is repeated only
/// before its first item.
/// </summary>
public sealed class PolicyBlobStore(IBlobStore inner, ResiliencePipeline pipeline) : IBlobStore
{
    /// <inheritdoc />
    public Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<BlobItem?>(inner.GetAsync(container, name, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<(Stream Content, BlobItem Item)?>(inner.OpenReadAsync(container, name, ct)), cancellationToken).AsTask();

    /// <inheritdoc />
    public Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var start = content.CanSeek ? content.Position : -1;
        var ran = false;
        return pipeline.ExecuteAsync(ct =>
        {
            if (ran)
            {
                if (start < 0)
                {
                    throw new InvalidOperationException($"{container}/{name}: the write failed part-way and its content cannot be read again, so it is not repeated.");
                }

                content.Position = start;
            }

            ran = true;
            return new ValueTask<BlobItem>(inner.WriteAsync(container, name, content, condition, ct));
        }, cancellationToken).AsTask();
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        IAsyncEnumerator<BlobItem>? enumerator = null;
        var hasFirst = await pipeline.ExecuteAsync(async ct =>
        {
            if (enumerator is not null)
            {
                await enumerator.DisposeAsync();
            }

            enumerator = inner.ListAsync(container, prefix, ct).GetAsyncEnumerator(ct);
            return await enumerator.MoveNextAsync();
        }, cancellationToken);

        await using (enumerator!)
        {
            if (!hasFirst)
            {
                yield break;
            }

            yield return enumerator!.Current;
            while (await enumerator.MoveNextAsync())
            {
                yield return enumerator.Current;
            }
        }
    }

    /// <inheritdoc />
    public Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default) =>
        pipeline.ExecuteAsync(ct => new ValueTask<bool>(inner.DeleteAsync(container, name, condition, ct)), cancellationToken).AsTask();
}

using System.Text;
using System.Text.Json;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Core.Jobs;

/// <summary>
/// Reads and writes job documents with optimistic concurrency, and keeps an index of the jobs that are not finished
/// (<c>jobs/active/{jobId}</c>, an empty marker), so the loops that only care about live jobs (the trainer watch,
/// <c>tune up</c>'s status view) read those and not every job ever created. A marker is written before a job becomes
/// active and removed after it finishes, so a crash in between leaves at worst a stale marker, which
/// <see cref="ListActiveAsync"/> removes when it finds the job finished.
/// </summary>
public sealed class JobStore(IBlobStore blobs)
{
    private const string ActivePrefix = "active/";

    // Written once the markers of jobs created before the index existed are in place.
    private const string IndexedMarker = ActivePrefix + ".indexed";

    private static readonly TimeSpan StaleMarkerAge = TimeSpan.FromMinutes(10);

    private static readonly JsonSerializerOptions Options = new(CloudEvent.JsonOptions) { WriteIndented = true };

    private static string Name(string jobId) => $"{jobId}.json";

    private Task<BlobItem> MarkActiveAsync(string jobId, CancellationToken cancellationToken) =>
        blobs.WriteAsync(Containers.Jobs, ActivePrefix + jobId, new MemoryStream([]), cancellationToken: cancellationToken);

    /// <summary>Creates the document; false when a job with this id already exists (someone else created it first).</summary>
    public async Task<bool> TryCreateAsync(JobDocument job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (!JobStates.IsTerminal(job.State))
        {
            await MarkActiveAsync(job.JobId, cancellationToken);
        }

        try
        {
            await blobs.WriteAsync(Containers.Jobs, Name(job.JobId), Serialize(job), BlobCondition.NotExists, cancellationToken);
            return true;
        }
        catch (BlobConflictException)
        {
            return false;
        }
    }

    /// <summary>The job and its ETag, or null when there is none.</summary>
    public async Task<(JobDocument Job, string ETag)?> GetAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var opened = await blobs.OpenReadAsync(Containers.Jobs, Name(jobId), cancellationToken);
        if (opened is null)
        {
            return null;
        }

        await using var content = opened.Value.Content;
        var job = await JsonSerializer.DeserializeAsync<JobDocument>(content, Options, cancellationToken)
            ?? throw new InvalidDataException($"jobs/{jobId}.json is empty.");
        return (job, opened.Value.Item.ETag);
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the current document and writes it if nobody wrote in between; on a
    /// conflict, re-reads and applies again. <paramref name="change"/> returns null to leave the document as it is.
    /// Returns the document as written (or as found when unchanged).
    /// </summary>
    public async Task<JobDocument> UpdateAsync(string jobId, Func<JobDocument, JobDocument?> change, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        for (var attempt = 0; ; attempt++)
        {
            var (job, etag) = await GetAsync(jobId, cancellationToken) ?? throw new InvalidOperationException($"Job {jobId} does not exist.");
            var updated = change(job);
            if (updated is null)
            {
                return job;
            }

            var wasActive = !JobStates.IsTerminal(job.State);
            var isActive = !JobStates.IsTerminal(updated.State);
            if (isActive && !wasActive)
            {
                await MarkActiveAsync(jobId, cancellationToken);
            }

            try
            {
                await blobs.WriteAsync(Containers.Jobs, Name(jobId), Serialize(updated), BlobCondition.Match(etag), cancellationToken);
                if (wasActive && !isActive)
                {
                    await blobs.DeleteAsync(Containers.Jobs, ActivePrefix + jobId, cancellationToken: cancellationToken);
                }

                return updated;
            }
            catch (BlobConflictException) when (attempt < 50)
            {
                // Someone else changed it: read again and re-apply.
            }
        }
    }

    /// <summary>Every job document, optionally for one model.</summary>
    public async IAsyncEnumerable<JobDocument> ListAsync(string? model = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var item in blobs.ListAsync(Containers.Jobs, "", cancellationToken))
        {
            if (!item.Name.EndsWith(".json", StringComparison.Ordinal))
            {
                continue;
            }

            if (await GetAsync(item.Name[..^5], cancellationToken) is { } found && (model is null || found.Job.Model == model))
            {
                yield return found.Job;
            }
        }
    }

    /// <summary>
    /// The jobs that are not finished (any state with a next state), read through the index: the cost follows the
    /// live jobs, not the history. Markers of finished or vanished jobs are removed on the way.
    /// </summary>
    public async IAsyncEnumerable<JobDocument> ListActiveAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (await blobs.GetAsync(Containers.Jobs, IndexedMarker, cancellationToken) is null)
        {
            // Jobs created before the index: mark the live ones once.
            await foreach (var job in ListAsync(cancellationToken: cancellationToken))
            {
                if (!JobStates.IsTerminal(job.State))
                {
                    await MarkActiveAsync(job.JobId, cancellationToken);
                }
            }

            await blobs.WriteAsync(Containers.Jobs, IndexedMarker, new MemoryStream([]), cancellationToken: cancellationToken);
        }

        await foreach (var item in blobs.ListAsync(Containers.Jobs, ActivePrefix, cancellationToken))
        {
            var jobId = item.Name[ActivePrefix.Length..];
            if (item.Name == IndexedMarker)
            {
                continue;
            }

            var found = await GetAsync(jobId, cancellationToken);
            if (found is { } live && !JobStates.IsTerminal(live.Job.State))
            {
                yield return live.Job;
            }
            else if (DateTimeOffset.UtcNow - item.LastModified > StaleMarkerAge)   // the storage's clock, not the pipeline's (which tests fake)
            {
                // Finished, or never created: a marker is written just before its job becomes active, so only an
                // old one is surely stale (a young one may belong to a job being created or retried right now).
                try
                {
                    await blobs.DeleteAsync(Containers.Jobs, item.Name, BlobCondition.Match(item.ETag), cancellationToken);
                }
                catch (BlobConflictException)
                {
                    // Rewritten meanwhile: its job became active again.
                }
            }
        }
    }

    private static MemoryStream Serialize(JobDocument job) => new(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(job, Options)));
}

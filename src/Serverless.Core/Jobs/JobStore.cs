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
/// <see cref="ListActiveAsync"/> removes when it finds the job finished. A second index,
/// <c>jobs/recent/{inverted creation time}-{jobId}</c>, lists jobs newest first (names sort by time), so "the latest
/// 50" reads 50 documents however long the history.
/// </summary>
public sealed class JobStore(IBlobStore blobs)
{
    private const string ActivePrefix = "active/";

    // Written once the markers of jobs created before the index existed are in place.
    private const string IndexedMarker = ActivePrefix + ".indexed";

    private static readonly TimeSpan StaleMarkerAge = TimeSpan.FromMinutes(10);

    private const string RecentPrefix = "recent/";

    // Written once the markers of jobs created before the newest-first index are in place.
    private const string RecentIndexedMarker = RecentPrefix + ".indexed";

    /// <summary>The newest-first marker: ticks counted down from the end of time, so the newest job's name sorts first.</summary>
    private static string RecentName(JobDocument job) =>
        $"{RecentPrefix}{DateTimeOffset.MaxValue.UtcTicks - job.CreatedAt.UtcTicks:D19}-{job.JobId}";

    private const string UnsweptPrefix = "unswept/";

    // Written once the markers of jobs created before the retention index are in place.
    private const string UnsweptIndexedMarker = UnsweptPrefix + ".indexed";

    private Task<BlobItem> MarkUnsweptAsync(string jobId, CancellationToken cancellationToken) =>
        blobs.WriteAsync(Containers.Jobs, UnsweptPrefix + jobId, new MemoryStream([]), cancellationToken: cancellationToken);

    private Task<BlobItem> MarkRecentAsync(JobDocument job, CancellationToken cancellationToken) =>
        blobs.WriteAsync(Containers.Jobs, RecentName(job), new MemoryStream([]), cancellationToken: cancellationToken);

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

        // Before the document, so every document has its marker; a marker whose creation lost the race (another
        // creator's document, another time) is told apart by its time when listed.
        await MarkRecentAsync(job, cancellationToken);
        await MarkUnsweptAsync(job.JobId, cancellationToken);
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
    /// The jobs whose files retention has not removed yet (live ones, and finished ones until they are swept), through
    /// the retention index <c>jobs/unswept/{jobId}</c>: the sweep's cost follows the jobs of the retention period, not
    /// the history. A marker is written with the job and dropped by <see cref="ForgetUnsweptAsync"/> once the job is
    /// marked swept; a crash in between leaves a marker whose job says it is swept. Jobs created before the index are
    /// indexed once, on the first call.
    /// </summary>
    public async IAsyncEnumerable<JobDocument> ListUnsweptAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (await blobs.GetAsync(Containers.Jobs, UnsweptIndexedMarker, cancellationToken) is null)
        {
            await foreach (var job in ListAsync(cancellationToken: cancellationToken))
            {
                if (!job.Swept)
                {
                    await MarkUnsweptAsync(job.JobId, cancellationToken);
                }
            }

            await blobs.WriteAsync(Containers.Jobs, UnsweptIndexedMarker, new MemoryStream([]), cancellationToken: cancellationToken);
        }

        await foreach (var item in blobs.ListAsync(Containers.Jobs, UnsweptPrefix, cancellationToken))
        {
            if (item.Name == UnsweptIndexedMarker)
            {
                continue;
            }

            if (await GetAsync(item.Name[UnsweptPrefix.Length..], cancellationToken) is { } found)
            {
                yield return found.Job;
            }
            else if (DateTimeOffset.UtcNow - item.LastModified > StaleMarkerAge)   // the storage's clock: a young marker may be a job being created
            {
                await blobs.DeleteAsync(Containers.Jobs, item.Name, cancellationToken: cancellationToken);
            }
        }
    }

    /// <summary>Drops a swept job from the retention index (call after the document says <c>Swept</c>).</summary>
    public Task ForgetUnsweptAsync(string jobId, CancellationToken cancellationToken = default) =>
        blobs.DeleteAsync(Containers.Jobs, UnsweptPrefix + jobId, cancellationToken: cancellationToken);

    /// <summary>
    /// Jobs newest first, optionally one model's, read through the newest-first index: stop enumerating after the
    /// ones you need, and only those documents are read (plus the names of the markers before them). Jobs created
    /// before the index are indexed once, on the first call.
    /// </summary>
    public async IAsyncEnumerable<JobDocument> ListNewestAsync(string? model = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (await blobs.GetAsync(Containers.Jobs, RecentIndexedMarker, cancellationToken) is null)
        {
            await foreach (var job in ListAsync(cancellationToken: cancellationToken))
            {
                await MarkRecentAsync(job, cancellationToken);
            }

            await blobs.WriteAsync(Containers.Jobs, RecentIndexedMarker, new MemoryStream([]), cancellationToken: cancellationToken);
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var item in blobs.ListAsync(Containers.Jobs, RecentPrefix, cancellationToken))
        {
            var name = item.Name[RecentPrefix.Length..];
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (dash != 19 || !long.TryParse(name.AsSpan(0, 19), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var inverted))
            {
                continue;   // the .indexed marker, or a name this version did not write
            }

            var jobId = name[(dash + 1)..];
            if ((model is not null && !jobId.StartsWith(model + "-", StringComparison.Ordinal)) || !seen.Add(jobId + "@" + inverted))
            {
                continue;
            }

            if (await GetAsync(jobId, cancellationToken) is { } found && DateTimeOffset.MaxValue.UtcTicks - found.Job.CreatedAt.UtcTicks == inverted
                && (model is null || found.Job.Model == model))
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

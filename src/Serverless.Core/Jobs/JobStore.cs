using System.Text;
using System.Text.Json;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Core.Jobs;

/// <summary>Reads and writes job documents with optimistic concurrency.</summary>
public sealed class JobStore(IBlobStore blobs)
{
    private static readonly JsonSerializerOptions Options = new(CloudEvent.JsonOptions) { WriteIndented = true };

    private static string Name(string jobId) => $"{jobId}.json";

    /// <summary>Creates the document; false when a job with this id already exists (someone else created it first).</summary>
    public async Task<bool> TryCreateAsync(JobDocument job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
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

            try
            {
                await blobs.WriteAsync(Containers.Jobs, Name(jobId), Serialize(updated), BlobCondition.Match(etag), cancellationToken);
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

    private static MemoryStream Serialize(JobDocument job) => new(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(job, Options)));
}

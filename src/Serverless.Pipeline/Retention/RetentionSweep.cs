using Microsoft.Extensions.Logging;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Retention;

/// <summary>What one sweep removed.</summary>
/// <param name="Jobs">Jobs whose files were removed.</param>
/// <param name="Blobs">Blobs deleted.</param>
/// <param name="Bytes">Their size.</param>
public sealed record RetentionResult(int Jobs, int Blobs, long Bytes);

/// <summary>
/// Retention: removes what a finished job leaves behind — its prepared shards (<c>prepared/{jobId}/</c>), checkpoints
/// and candidate (<c>checkpoints/{jobId}/</c>) and local work folder — once it has been finished (published, rejected,
/// failed or cancelled) for longer than <see cref="PipelineOptions.Retention"/>, so disk use stays bounded over months
/// of scheduled retraining. Never touches registry versions, job documents, datasets, or a job that is not finished.
/// A job is marked swept before its files go, so later sweeps skip it; a failed or cancelled job that was swept can no longer be retried
/// (its shards are gone) and <c>tune retry</c> says so.
/// </summary>
public sealed class RetentionSweep(IBlobStore blobs, JobStore jobs, PipelineOptions options, TimeProvider clock, ILogger<RetentionSweep> logger)
{
    /// <summary>The note a swept job's last history entry carries.</summary>
    public const string SweptNote = "files removed by retention";

    /// <summary>Removes the files of jobs finished before now − <paramref name="olderThan"/> (default <see cref="PipelineOptions.Retention"/>).</summary>
    public async Task<RetentionResult> SweepAsync(TimeSpan? olderThan = null, CancellationToken cancellationToken = default)
    {
        var before = clock.GetUtcNow() - (olderThan ?? options.Retention);
        int swept = 0, deleted = 0;
        long bytes = 0;
        // Through the retention index: jobs already swept are not read again, so a sweep costs the jobs of the
        // retention period (and the live ones), not the whole history.
        await foreach (var job in jobs.ListUnsweptAsync(cancellationToken))
        {
            if (job.Swept)
            {
                await jobs.ForgetUnsweptAsync(job.JobId, cancellationToken);   // swept before a crash dropped its marker
                continue;
            }

            if (!JobStates.IsTerminal(job.State) || (job.History.Count > 0 ? job.History[^1].At : job.CreatedAt) > before)
            {
                continue;
            }

            // Marked first, by a conditional write on the document, and only if it is still finished: a retry on request
            // racing this sweep either wins (the job is live again and nothing is deleted) or finds it swept and refuses.
            var marked = false;
            await jobs.UpdateAsync(job.JobId, j =>
            {
                marked = JobStates.IsTerminal(j.State) && !j.Swept;
                return marked ? j with { Swept = true } : null;
            }, cancellationToken);
            if (!marked)
            {
                continue;
            }

            foreach (var (container, prefix) in new[] { (Containers.Prepared, $"{job.JobId}/"), (Containers.Checkpoints, $"{job.JobId}/") })
            {
                await foreach (var item in blobs.ListAsync(container, prefix, cancellationToken))
                {
                    if (await blobs.DeleteAsync(container, item.Name, cancellationToken: cancellationToken))
                    {
                        deleted++;
                        bytes += item.Length;
                    }
                }
            }

            foreach (var local in new[] { Path.Combine(options.WorkDirectory, "train", job.JobId), Path.Combine(options.WorkDirectory, "prepare", job.JobId) })
            {
                if (Directory.Exists(local))
                {
                    Directory.Delete(local, recursive: true);
                }
            }

            await jobs.ForgetUnsweptAsync(job.JobId, cancellationToken);
            swept++;
        }

        if (swept > 0)
        {
            logger.RetentionSwept(deleted, swept, before);
        }

        return new RetentionResult(swept, deleted, bytes);
    }

    /// <summary>Sweeps every <see cref="PipelineOptions.RetentionInterval"/> until cancelled; a failed sweep is logged and the next one tries again.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await SweepAsync(cancellationToken: cancellationToken);
                await Task.Delay(options.RetentionInterval, clock, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                logger.RetentionFailed(e);
                try
                {
                    await Task.Delay(options.RetentionInterval, clock, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}

using System.Text;
using System.Text.Json;
using Cronos;
using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Training;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Schedule;

/// <summary>
/// Schedule (every minute): for each model whose <c>retrain.cron</c> has an occurrence since the last one handled,
/// sends a <c>FineTuneRequested</c> whose trigger key is that occurrence (so it can never be sent twice), unless
/// <c>onlyIfDataChanged</c> and the dataset equals the last job's. The last occurrence handled is kept in
/// <c>receipts/schedule/{model}.json</c>, so a restart neither misses nor repeats one; after downtime only the latest
/// missed occurrence runs; a clock that jumps back repeats none. Occurrences are computed in the spec's
/// <c>retrain.timeZone</c> (Cronos: a time skipped by daylight saving runs once after the gap, a repeated one once).
/// </summary>
public sealed class RetrainOnScheduleHandler(IBlobStore blobs, SpecReader specs, JobStore jobs, PipelineBus bus, ILogger<RetrainOnScheduleHandler> logger)
{
    /// <summary>Checks every model at <paramref name="now"/>; returns the models a request was sent for.</summary>
    public async Task<IReadOnlyList<string>> HandleAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var queued = new List<string>();
        await foreach (var item in blobs.ListAsync(Containers.Datasets, "", cancellationToken))
        {
            var parts = item.Name.Split('/');
            if (parts.Length != 2 || parts[1] != Containers.SpecFile)
            {
                continue;
            }

            var model = parts[0];
            PipelineSpec spec;
            try
            {
                spec = await specs.ReadAsync(model, cancellationToken: cancellationToken);
            }
            catch (SpecException)
            {
                continue;   // reported when the model's next job is prepared
            }

            if (spec.Retrain.Cron is not { } cron)
            {
                continue;
            }

            var receipt = $"schedule/{model}.json";
            var (last, etag) = await ReadReceiptAsync(receipt, cancellationToken);
            var from = last ?? now.AddMinutes(-1);
            if (from >= now)
            {
                continue;   // the clock went back: occurrences up to the receipt's are handled already
            }

            var occurrence = CronExpression.Parse(cron).GetOccurrences(from, now, spec.Retrain.Zone(), fromInclusive: false, toInclusive: true).LastOrDefault();
            if (occurrence == default)
            {
                if (last is null)
                {
                    await WriteReceiptAsync(receipt, from, etag, cancellationToken);
                }

                continue;
            }

            var at = occurrence.ToUniversalTime();
            if (!await WriteReceiptAsync(receipt, at, etag, cancellationToken))
            {
                continue;   // another scheduler handled it
            }

            if (spec.Retrain.OnlyIfDataChanged && await UnchangedAsync(model, cancellationToken))
            {
                logger.ScheduleDue(model, at, false);
                continue;
            }

            var key = at.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            var sent = await bus.RequestAsync(new FineTuneRequested(model, "schedule", key), PipelineBus.StableId("schedule", model, key), cancellationToken: cancellationToken);
            logger.ScheduleDue(model, at, sent);
            if (sent)
            {
                queued.Add(model);
            }
        }

        return queued;
    }

    private async Task<bool> UnchangedAsync(string model, CancellationToken cancellationToken)
    {
        JobDocument? latest = null;
        await foreach (var job in jobs.ListAsync(model, cancellationToken))
        {
            if (latest is null || job.CreatedAt > latest.CreatedAt)
            {
                latest = job;
            }
        }

        if (latest is null)
        {
            return false;
        }

        return (await DatasetSnapshot.TakeAsync(blobs, model, cancellationToken)).Hash == latest.DatasetHash;
    }

    private async Task<(DateTimeOffset? Last, string? ETag)> ReadReceiptAsync(string name, CancellationToken cancellationToken)
    {
        var opened = await blobs.OpenReadAsync(Containers.Receipts, name, cancellationToken);
        if (opened is null)
        {
            return (null, null);
        }

        await using var content = opened.Value.Content;
        var receipt = await JsonSerializer.DeserializeAsync<Receipt>(content, CloudEvent.JsonOptions, cancellationToken);
        return (receipt?.Last, opened.Value.Item.ETag);
    }

    private async Task<bool> WriteReceiptAsync(string name, DateTimeOffset last, string? etag, CancellationToken cancellationToken)
    {
        try
        {
            var json = JsonSerializer.Serialize(new Receipt(last), CloudEvent.JsonOptions);
            await blobs.WriteAsync(Containers.Receipts, name, new MemoryStream(Encoding.UTF8.GetBytes(json)),
                etag is null ? BlobCondition.NotExists : BlobCondition.Match(etag), cancellationToken);
            return true;
        }
        catch (BlobConflictException)
        {
            return false;
        }
    }

    private sealed record Receipt(DateTimeOffset Last);
}

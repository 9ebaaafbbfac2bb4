using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Ingest;

/// <summary>
/// Ingest: a new dataset file becomes a <see cref="FineTuneRequested"/> for its model, sent after the model's
/// <c>debounceSeconds</c>. The MessageId comes from blob name + ETag, so a repeated blob event is dropped by the
/// queue's duplicate detection; all uploads share one trigger key, so a burst becomes one job.
/// </summary>
public sealed class DatasetUploadedHandler(PipelineBus bus, SpecReader specs, ILogger<DatasetUploadedHandler> logger)
{
    /// <summary>The trigger key every upload shares.</summary>
    public const string UploadTriggerKey = "upload";

    /// <summary>Handles one blob event; returns whether a request was sent (false: ignored or duplicate).</summary>
    public async Task<bool> HandleAsync(DatasetUploaded uploaded, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uploaded);
        using var activity = PipelineTracing.Ingest.StartActivity("DatasetUploaded", System.Diagnostics.ActivityKind.Consumer);
        activity?.SetTag("blob.name", uploaded.Name);
        var slash = uploaded.Name.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || uploaded.Name == uploaded.Name[..slash] + "/" + Containers.SpecFile || uploaded.Name.Count(c => c == '/') > 2)
        {
            logger.IgnoringBlob(uploaded.Name, "not a dataset file at datasets/{model}/{file} or datasets/{model}/{class}/{file}");
            return false;
        }

        var model = uploaded.Name[..slash];
        try
        {
            BlobNames.Model(model);
        }
        catch (ArgumentException e)
        {
            logger.IgnoringBlob(uploaded.Name, e.Message);
            return false;
        }

        // A spec that does not parse still starts the request: Prepare records the job as failed with the spec's errors.
        double debounce;
        try
        {
            debounce = (await specs.ReadAsync(model, cancellationToken: cancellationToken)).DebounceSeconds;
        }
        catch (Model.Training.SpecException)
        {
            debounce = new PipelineSpec().DebounceSeconds;
        }

        var messageId = PipelineBus.StableId("upload", uploaded.Name, uploaded.ETag);
        var sent = await bus.RequestAsync(new FineTuneRequested(model, "upload", UploadTriggerKey), messageId,
            bus.Clock.GetUtcNow().AddSeconds(debounce), cancellationToken);
        logger.DatasetQueued(uploaded.Name, model, sent);
        return sent;
    }
}

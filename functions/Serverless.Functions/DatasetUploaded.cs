using Azure.Storage.Blobs;
using Microsoft.Azure.Functions.Worker;
using Serverless.Pipeline.Ingest;

namespace Serverless.Functions;

/// <summary>Ingest: a blob created under datasets/ (delivered by Event Grid).</summary>
public sealed class DatasetUploaded(DatasetUploadedHandler ingest)
{
    /// <summary>Turns the new blob version into a fine-tune request.</summary>
    [Function(nameof(DatasetUploaded))]
    public async Task RunAsync(
        [BlobTrigger("%DatasetsContainer%/{model}/{name}", Source = BlobTriggerSource.EventGrid, Connection = "AzureWebJobsStorage")] BlobClient blob,
        string model, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken);
        // The blob's own name, not the pattern's parts rebuilt: a class folder ({model}/{class}/x.png) keeps every segment.
        await ingest.HandleAsync(new Serverless.Pipeline.Ingest.DatasetUploaded(blob.Name, properties.Value.ETag.ToString()), cancellationToken);
    }
}

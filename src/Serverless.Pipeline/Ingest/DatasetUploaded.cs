namespace Serverless.Pipeline.Ingest;

/// <summary>A blob was created or replaced under <c>datasets/</c> (from the Functions BlobTrigger or the embedded watcher).</summary>
/// <param name="Name">The blob name inside the container: <c>{model}/{file}</c>.</param>
/// <param name="ETag">Its ETag.</param>
public sealed record DatasetUploaded(string Name, string ETag);

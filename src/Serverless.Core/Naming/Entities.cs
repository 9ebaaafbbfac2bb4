namespace Serverless.Core.Naming;

/// <summary>The storage containers of the layout in ARCHITECTURE.md (one storage account, or one folder locally).</summary>
public static class Containers
{
    /// <summary>Users drop data here: <c>datasets/{model}/{file}</c>, and an optional <c>datasets/{model}/tune.json</c>.</summary>
    public const string Datasets = "datasets";

    /// <summary>Pre-trained models: <c>base-models/{name}/config.json</c> + <c>model.safetensors</c>.</summary>
    public const string BaseModels = "base-models";

    /// <summary>Job documents: <c>jobs/{jobId}.json</c>.</summary>
    public const string Jobs = "jobs";

    /// <summary>Token shards: <c>prepared/{jobId}/train.bin</c>, <c>val.bin</c>, <c>test.bin</c>, <c>manifest.json</c>.</summary>
    public const string Prepared = "prepared";

    /// <summary>Training state and results: <c>checkpoints/{jobId}/…</c>, <c>checkpoints/{jobId}/candidate/…</c>.</summary>
    public const string Checkpoints = "checkpoints";

    /// <summary>Published models: <c>model-registry/{model}/index.json</c> and <c>{model}/{version}/…</c>.</summary>
    public const string Registry = "model-registry";

    /// <summary>Receipts of blob-created events already turned into requests (the embedded trigger's memory).</summary>
    public const string Receipts = "receipts";

    /// <summary>The spec file's name inside a model's dataset folder.</summary>
    public const string SpecFile = "tune.json";
}

/// <summary>Queue, topic and subscription names; the Bicep and the hosts use these same strings.</summary>
public static class Entities
{
    /// <summary>Queue of <c>FineTuneRequested</c> (duplicate detection on, MessageId = request id).</summary>
    public const string FineTuneRequests = "finetune-requests";

    /// <summary>Topic of <c>TrainingStarted/Progress/Completed/Failed</c>.</summary>
    public const string TrainingEvents = "training-events";

    /// <summary>Subscription of <see cref="TrainingEvents"/> for the Publish stage (completed and failed).</summary>
    public const string PublisherSubscription = "publisher";

    /// <summary>Subscription of <see cref="TrainingEvents"/> that keeps job documents current (all types).</summary>
    public const string StatusSubscription = "status";

    /// <summary>Topic of <c>ModelPublished</c>, <c>ModelRejected</c>, <c>DatasetRejected</c>, for anyone to subscribe to.</summary>
    public const string ModelEvents = "model-events";

    /// <summary>The entity name of a topic subscription.</summary>
    public static string Subscription(string topic, string name) => $"{topic}/subscriptions/{name}";
}

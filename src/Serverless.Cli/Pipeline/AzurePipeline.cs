using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using Serverless.Azure;
using Serverless.Azure.Blobs;
using Serverless.Azure.Dispatch;
using Serverless.Azure.Messaging;
using Serverless.Core.Ports;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;

namespace Serverless.Cli.Pipeline;

/// <summary>
/// The pipeline's parts in Azure, from the same settings the hosts use: <c>Storage__blobServiceUri</c>,
/// <c>ServiceBus__fullyQualifiedNamespace</c>, <c>Trainer__JobResourceId</c>, signed in with
/// <see cref="DefaultAzureCredential"/> (your `az login`, or <c>AZURE_CLIENT_ID</c>'s managed identity). For emulators,
/// <c>Storage__connectionString</c> / <c>ServiceBus__connectionString</c>. A part that is not configured fails when
/// first used, naming the setting.
/// </summary>
internal sealed class AzurePipeline : IPipelineParts
{
    private AzurePipeline(string location, IBlobStore blobs, IMessageBus bus, IJobDispatcher dispatcher, string home)
    {
        Location = location;
        Blobs = blobs;
        Bus = bus;
        Runtime = new PipelineRuntime(blobs, bus, dispatcher, TimeProvider.System, new PipelineOptions { WorkDirectory = Path.Combine(Path.GetFullPath(home), "work-azure") });
    }

    public string Location { get; }

    public IBlobStore Blobs { get; }

    public IMessageBus Bus { get; }

    public PipelineRuntime Runtime { get; }

    public static AzurePipeline FromEnvironment(string home, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var credential = PipelineAzureExtensions.Credential(environment);
        BlobServiceClient service;
        if (environment("Storage__connectionString") is { Length: > 0 } connection)
        {
            service = new BlobServiceClient(connection);
        }
        else if (environment("Storage__blobServiceUri") is { Length: > 0 } uri)
        {
            service = new BlobServiceClient(new Uri(uri), credential);
        }
        else
        {
            throw new CliException("--store azure needs Storage__blobServiceUri (your storage account's blob endpoint; or Storage__connectionString for Azurite).");
        }

        IMessageBus bus = environment("ServiceBus__connectionString") is { Length: > 0 } busConnection
            ? new AzureMessageBus(new ServiceBusClient(busConnection))
            : environment("ServiceBus__fullyQualifiedNamespace") is { Length: > 0 } ns
                ? new AzureMessageBus(new ServiceBusClient(ns, credential))
                : new Unconfigured("ServiceBus__fullyQualifiedNamespace (name.servicebus.windows.net)");
        IJobDispatcher dispatcher = environment("Trainer__JobResourceId") is { Length: > 0 } job
            ? new ContainerAppsJobDispatcher(new HttpClient(), credential, PipelineAzureExtensions.JobOptions(job))
            : new Unconfigured("Trainer__JobResourceId (the trainer Container Apps job's resource id)");
        return new AzurePipeline(service.Uri.ToString(), new AzureBlobStore(service), bus, dispatcher, home);
    }

    /// <summary>In Azure, Event Grid and the Functions app do Ingest; here the bus-triggered stages and the schedule run.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => Runtime.RunStagesAsync(TimeSpan.FromSeconds(1), cancellationToken);

    public void Dispose()
    {
        if (Bus is IAsyncDisposable disposable)
        {
            disposable.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>A part whose setting is missing: any use says which setting to provide.</summary>
    private sealed class Unconfigured(string setting) : IMessageBus, IJobDispatcher
    {
        private CliException Missing() => new($"--store azure: {setting} is not set.");

        public Task EnsureQueueAsync(string queue, EntityOptions? options = null, CancellationToken cancellationToken = default) => throw Missing();

        public Task EnsureSubscriptionAsync(string topic, string subscription, SubscriptionFilter filter, EntityOptions? options = null, CancellationToken cancellationToken = default) => throw Missing();

        public Task<bool> SendAsync(string queue, OutgoingMessage message, CancellationToken cancellationToken = default) => throw Missing();

        public Task PublishAsync(string topic, OutgoingMessage message, CancellationToken cancellationToken = default) => throw Missing();

        public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(string entity, int maxMessages = 1, CancellationToken cancellationToken = default) => throw Missing();

        public Task CompleteAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) => throw Missing();

        public Task AbandonAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) => throw Missing();

        public Task DeadLetterAsync(string entity, ReceivedMessage message, string reason, string description, CancellationToken cancellationToken = default) => throw Missing();

        public Task<DateTimeOffset> RenewLockAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) => throw Missing();

        public Task<IReadOnlyList<DeadLetteredMessage>> PeekDeadLettersAsync(string entity, int maxMessages = 100, CancellationToken cancellationToken = default) => throw Missing();

        public Task<int> RequeueDeadLettersAsync(string entity, CancellationToken cancellationToken = default) => throw Missing();

        public Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default) => throw Missing();

        public Task CancelAsync(string execution, CancellationToken cancellationToken = default) => throw Missing();

        public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) => throw Missing();

        public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => throw Missing();
    }
}

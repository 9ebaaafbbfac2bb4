using Serverless.Pipeline.Messaging;

namespace Serverless.Azure;

/// <summary>
/// The settings each Azure host needs at start-up, as environment variable names (<c>__</c> for <c>:</c>). Each host
/// checks its list when it starts, naming what is missing; the settings contract test compares every list with the
/// app settings and environments in the compiled Bicep, so a deployment cannot start a host without what it needs.
/// </summary>
public static class HostSettings
{
    /// <summary>The identity-based connections every host uses (blob storage, Service Bus, the user-assigned identity).</summary>
    private static readonly string[] Connections = ["Storage__blobServiceUri", "ServiceBus__fullyQualifiedNamespace", "AZURE_CLIENT_ID"];

    /// <summary>
    /// The Functions app: our connections, the datasets container the blob trigger binds to, the trainer job its
    /// trainer watch reads, and the identity-based <c>AzureWebJobsStorage</c> the Functions host keeps its state in —
    /// with a queue endpoint, because the blob trigger keeps its receipts and poison messages in queues.
    /// </summary>
    public static IReadOnlyList<string> Functions { get; } =
    [
        .. Connections, "DatasetsContainer", "Trainer__JobResourceId",
        "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
    ];

    /// <summary>The Service Bus worker: our connections and the trainer job it starts (its image and settings are read from the job).</summary>
    public static IReadOnlyList<string> Worker { get; } = [.. Connections, "Trainer__JobResourceId"];

    /// <summary>The trainer, in a Container Apps job execution (<c>JOB_ID</c> comes with each start request).</summary>
    public static IReadOnlyList<string> Trainer { get; } = Connections;

    private static readonly string[] EmulatorConnections = ["Storage:connectionString", "ServiceBus:connectionString", "AzureWebJobsStorage"];

    /// <summary>Set by Container Apps in every job execution's containers.</summary>
    public const string JobExecutionVariable = "CONTAINER_APP_JOB_EXECUTION_NAME";

    /// <summary>Throws, naming every missing setting, unless all of <paramref name="required"/> are set.</summary>
    public static void Require(string host, IReadOnlyList<string> required, Func<string, string?> read)
    {
        ArgumentNullException.ThrowIfNull(required);
        ArgumentNullException.ThrowIfNull(read);
        var missing = required.Where(name => string.IsNullOrWhiteSpace(read(name))).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"The {host} cannot start: {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} not set " +
                "(app settings or environment; in Azure, infra/main.bicep sets them).");
        }
    }

    /// <summary>
    /// <see cref="Require"/> against configuration, unless it names an emulator or a development account by connection
    /// string (<c>Storage:connectionString</c>, <c>ServiceBus:connectionString</c>, <c>AzureWebJobsStorage</c>), which
    /// replaces the identity-based settings for local runs.
    /// </summary>
    public static void RequireUnlessEmulated(string host, IReadOnlyList<string> required, Microsoft.Extensions.Configuration.IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (EmulatorConnections.Any(k => !string.IsNullOrWhiteSpace(configuration[k])))
        {
            return;
        }

        Require(host, required, From(configuration));
    }

    /// <summary>
    /// The stages' options for an Azure host, from the <c>Pipeline</c> section (<c>Pipeline__MaxConcurrentJobs</c>,
    /// <c>Pipeline__StartTimeout</c>, <c>Pipeline__HeartbeatTimeout</c>, <c>Pipeline__WatchInterval</c>,
    /// <c>Pipeline__WaitBackoff</c>, <c>Pipeline__MaxWaitBackoff</c>, <c>Pipeline__WaitHorizon</c>, <c>Pipeline__PendingNotice</c>,
    /// <c>Pipeline__Retention</c>, <c>Pipeline__RetentionInterval</c> as <c>[d.]hh:mm:ss</c>), each defaulting to <see cref="PipelineOptions"/>'s value; validated where the host registers them.
    /// </summary>
    public static PipelineOptions PipelineOptions(Microsoft.Extensions.Configuration.IConfiguration configuration, string workDirectory, int maxConcurrentJobs)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var defaults = new PipelineOptions { WorkDirectory = workDirectory, MaxConcurrentJobs = maxConcurrentJobs };
        TimeSpan Time(string name, TimeSpan fallback) => configuration[$"Pipeline:{name}"] is { Length: > 0 } text
            ? TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value
                : throw new InvalidOperationException($"Pipeline__{name} '{text}' is not a time span (hh:mm:ss).")
            : fallback;
        var slots = configuration["Pipeline:MaxConcurrentJobs"] is { Length: > 0 } count
            ? int.TryParse(count, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : throw new InvalidOperationException($"Pipeline__MaxConcurrentJobs '{count}' is not a number.")
            : maxConcurrentJobs;
        return defaults with
        {
            MaxConcurrentJobs = slots,
            StartTimeout = Time(nameof(defaults.StartTimeout), defaults.StartTimeout),
            HeartbeatTimeout = Time(nameof(defaults.HeartbeatTimeout), defaults.HeartbeatTimeout),
            WatchInterval = Time(nameof(defaults.WatchInterval), defaults.WatchInterval),
            WaitBackoff = Time(nameof(defaults.WaitBackoff), defaults.WaitBackoff),
            MaxWaitBackoff = Time(nameof(defaults.MaxWaitBackoff), defaults.MaxWaitBackoff),
            WaitHorizon = Time(nameof(defaults.WaitHorizon), defaults.WaitHorizon),
            PendingNotice = Time(nameof(defaults.PendingNotice), defaults.PendingNotice),
            Retention = Time(nameof(defaults.Retention), defaults.Retention),
            RetentionInterval = Time(nameof(defaults.RetentionInterval), defaults.RetentionInterval),
        };
    }

    /// <summary>Reads a setting by its environment variable name from configuration (where <c>__</c> is <c>:</c>).</summary>
    public static Func<string, string?> From(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        name => configuration[name.Replace("__", ":", StringComparison.Ordinal)];
}

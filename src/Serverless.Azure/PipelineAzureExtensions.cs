using Azure.Core;
using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Azure.Blobs;
using Serverless.Azure.Dispatch;
using Serverless.Azure.Messaging;
using Serverless.Core.Ports;

namespace Serverless.Azure;

/// <summary>Registers the Azure implementations of the ports.</summary>
public static class PipelineAzureExtensions
{
    /// <summary>
    /// Registers <see cref="IBlobStore"/>, <see cref="IMessageBus"/>, <see cref="IJobDispatcher"/> (when
    /// <c>Trainer:JobResourceId</c> is set; the trainer's image and settings are read from that job) and <see cref="TimeProvider"/> from configuration, with identity-based
    /// connections: <c>Storage:blobServiceUri</c>, <c>ServiceBus:fullyQualifiedNamespace</c> and a
    /// <see cref="DefaultAzureCredential"/> (the user-assigned identity named by <c>AZURE_CLIENT_ID</c>). For local
    /// emulators only, <c>Storage:connectionString</c> / <c>ServiceBus:connectionString</c> are accepted instead.
    /// </summary>
    public static IServiceCollection AddPipelineAzure(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var setting = HostSettings.From(configuration);
        services.AddSingleton<TokenCredential>(_ => Credential(setting));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IBlobStore>(sp => new AzureBlobStore(BlobService(setting, sp.GetRequiredService<TokenCredential>())));
        services.AddSingleton(sp => ServiceBus(setting, sp.GetRequiredService<TokenCredential>()));
        services.AddSingleton<IMessageBus>(sp => new AzureMessageBus(sp.GetRequiredService<ServiceBusClient>()));
        if (configuration["Trainer:JobResourceId"] is { Length: > 0 } jobId)
        {
            var job = JobOptions(jobId);   // a malformed id fails at start-up, not at the first dispatch
            services.AddSingleton<IJobDispatcher>(sp => new ContainerAppsJobDispatcher(new HttpClient(), sp.GetRequiredService<TokenCredential>(), job));
        }

        return services;
    }

    /// <summary>Reads a Container Apps job resource id (<c>/subscriptions/…/resourceGroups/…/providers/Microsoft.App/jobs/{name}</c>).</summary>
    public static ContainerAppsJobOptions JobOptions(string resourceId)
    {
        ArgumentNullException.ThrowIfNull(resourceId);
        var parts = resourceId.Trim('/').Split('/');
        if (parts.Length != 8 || parts[0] != "subscriptions" || parts[2] != "resourceGroups" || parts[4] != "providers" || parts[5] != "Microsoft.App" || parts[6] != "jobs")
        {
            throw new InvalidOperationException($"Trainer:JobResourceId '{resourceId}' is not a Container Apps job resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.App/jobs/NAME).");
        }

        return new ContainerAppsJobOptions { SubscriptionId = parts[1], ResourceGroup = parts[3], JobName = parts[7] };
    }

    /// <summary>The identity every host signs in with: the user-assigned managed identity <c>AZURE_CLIENT_ID</c> names (in Azure), else the developer's.</summary>
    public static TokenCredential Credential(Func<string, string?> setting)
    {
        ArgumentNullException.ThrowIfNull(setting);
        return new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = setting("AZURE_CLIENT_ID") });
    }

    /// <summary>Blob Storage from <c>Storage__blobServiceUri</c> and the identity (or, for emulators, <c>Storage__connectionString</c>).</summary>
    public static BlobServiceClient BlobService(Func<string, string?> setting, TokenCredential credential)
    {
        ArgumentNullException.ThrowIfNull(setting);
        return setting("Storage__connectionString") is { Length: > 0 } connection
            ? new BlobServiceClient(connection)
            : new BlobServiceClient(new Uri(Required(setting, "Storage__blobServiceUri")), credential);
    }

    /// <summary>Service Bus from <c>ServiceBus__fullyQualifiedNamespace</c> and the identity (or, for emulators, <c>ServiceBus__connectionString</c>).</summary>
    public static ServiceBusClient ServiceBus(Func<string, string?> setting, TokenCredential credential)
    {
        ArgumentNullException.ThrowIfNull(setting);
        return setting("ServiceBus__connectionString") is { Length: > 0 } connection
            ? new ServiceBusClient(connection)
            : new ServiceBusClient(Required(setting, "ServiceBus__fullyQualifiedNamespace"), credential);
    }

    private static string Required(Func<string, string?> setting, string name) =>
        setting(name) is { Length: > 0 } value ? value : throw new InvalidOperationException($"{name} is not set (identity-based connection: a URI or namespace, no key).");
}

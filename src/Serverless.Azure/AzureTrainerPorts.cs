using Serverless.Azure.Blobs;
using Serverless.Azure.Messaging;
using Serverless.Core.Ports;

namespace Serverless.Azure;

/// <summary>The trainer's ports in Azure: Blob Storage and Service Bus through the job's managed identity.</summary>
public static class AzureTrainerPorts
{
    /// <summary>
    /// The Azure ports when the environment says the trainer runs on Azure — it is a Container Apps job execution, or
    /// names a storage account or a Service Bus namespace — else null (the embedded parts of a <c>tune up</c> folder).
    /// On Azure, every setting of <see cref="HostSettings.Trainer"/> must be there: a missing one is named, never
    /// silently replaced by the embedded parts.
    /// </summary>
    public static (IBlobStore Blobs, IMessageBus Bus)? FromEnvironment(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var onAzure = HostSettings.Trainer.Take(2).Any(name => !string.IsNullOrWhiteSpace(environment(name)))
            || !string.IsNullOrWhiteSpace(environment(HostSettings.JobExecutionVariable));
        if (!onAzure)
        {
            return null;
        }

        HostSettings.Require("trainer", HostSettings.Trainer, environment);
        var credential = PipelineAzureExtensions.Credential(environment);
        return (new AzureBlobStore(PipelineAzureExtensions.BlobService(environment, credential)),
            new AzureMessageBus(PipelineAzureExtensions.ServiceBus(environment, credential)));
    }
}

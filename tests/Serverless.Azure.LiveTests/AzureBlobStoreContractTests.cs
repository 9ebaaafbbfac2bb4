using Azure.Identity;
using Azure.Storage.Blobs;
using Serverless.Azure.Blobs;
using Serverless.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Azure.LiveTests;

/// <summary>The blob store contract against a real storage account (identity-based: DefaultAzureCredential, Storage Blob Data Contributor).</summary>
public sealed class AzureBlobStoreContractTests : BlobStoreContract
{
    protected override string Container { get; } = "live-ct-" + Guid.NewGuid().ToString("N")[..20];

    protected override IBlobStore CreateStore() =>
        new AzureBlobStore(new BlobServiceClient(new Uri(Environment.GetEnvironmentVariable("STORAGE_BLOB_ENDPOINT")!), new DefaultAzureCredential()));
}

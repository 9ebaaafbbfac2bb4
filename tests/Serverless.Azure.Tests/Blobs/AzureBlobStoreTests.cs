using Serverless.Azure.Blobs;
using Serverless.Contracts;
using Serverless.Core.Ports;

namespace Serverless.Azure.Tests.Blobs;

/// <summary>The blob store contract against Azurite (real Blob Storage protocol, conditional requests included).</summary>
public sealed class AzureBlobStoreTests(AzuriteFixture azurite) : BlobStoreContract, IClassFixture<AzuriteFixture>
{
    protected override string Container { get; } = "ct-" + Guid.NewGuid().ToString("N")[..20];

    protected override IBlobStore CreateStore() => new AzureBlobStore(azurite.Require());

    [Fact]
    public void Transient_IsRetried_ConflictsAreNot()
    {
        AzureBlobStore.IsTransient(new global::Azure.RequestFailedException(503, "busy")).ShouldBeTrue();
        AzureBlobStore.IsTransient(new global::Azure.RequestFailedException(429, "throttled")).ShouldBeTrue();
        AzureBlobStore.IsTransient(new global::Azure.RequestFailedException(412, "condition")).ShouldBeFalse();
        AzureBlobStore.IsTransient(new global::Azure.RequestFailedException(409, "conflict")).ShouldBeFalse();
    }
}

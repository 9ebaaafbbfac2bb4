using Serverless.Contracts;

namespace Serverless.Cli.Tests.Pipeline;

/// <summary>`--store azure`: the same commands on Azure Blob Storage (Azurite here); Service Bus is not configured, and says so.</summary>
public sealed class AzureStoreCommandsTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task Submit_Jobs_Models_UseBlobStorage_AndAMissingSettingIsNamed()
    {
        var service = azurite.Require();
        Environment.SetEnvironmentVariable("Storage__connectionString", azurite.ConnectionString);
        Environment.SetEnvironmentVariable("ServiceBus__connectionString", null);
        Environment.SetEnvironmentVariable("ServiceBus__fullyQualifiedNamespace", null);
        var dir = Path.Combine(Path.GetTempPath(), "azure-store-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var model = "az" + Guid.NewGuid().ToString("N")[..10];
        var file = Path.Combine(dir, "data.jsonl");
        await File.WriteAllTextAsync(file, "{\"text\": \"hello\"}\n{\"text\": \"world\"}\n");
        try
        {
            var submitted = CliFixture.Run("submit", file, "--model", model, "--store", "azure", "--home", dir);
            submitted.ExitCode.ShouldBe(0, submitted.Error);
            (await service.GetBlobContainerClient("datasets").GetBlobClient($"{model}/data.jsonl").ExistsAsync()).Value.ShouldBeTrue();

            var jobs = CliFixture.Run("jobs", "--store", "azure", "--home", dir);
            jobs.ExitCode.ShouldBe(0, jobs.Error);
            jobs.Output.ShouldContain("state");

            var events = CliFixture.Run("events", "--store", "azure", "--home", dir);
            events.ExitCode.ShouldNotBe(0);
            events.Error.Trim().ShouldBe("error: --store azure: ServiceBus__fullyQualifiedNamespace (name.servicebus.windows.net) is not set.");
        }
        finally
        {
            Environment.SetEnvironmentVariable("Storage__connectionString", null);
            Directory.Delete(dir, recursive: true);
        }
    }
}

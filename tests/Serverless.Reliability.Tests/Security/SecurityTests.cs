using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Naming;
using Serverless.Embedded.Blobs;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Publish;

namespace Serverless.Reliability.Tests.Security;

/// <summary>No way in: registry files are verified before use, and every HTTP route needs a key.</summary>
public sealed class SecurityTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("security-").FullName;

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_home, recursive: true);
    }

    [Fact]
    public void EveryHttpRoute_RequiresAFunctionKey()
    {
        var triggers = typeof(Serverless.Functions.Api).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static))
            .SelectMany(m => m.GetParameters().Select(p => (Method: m, Trigger: p.GetCustomAttribute<HttpTriggerAttribute>())))
            .Where(x => x.Trigger is not null)
            .ToList();
        triggers.Count.ShouldBe(8, "list models, show model, show version, list jobs, show job, submit, cancel, retry");
        triggers.ShouldAllBe(x => x.Trigger!.AuthLevel == AuthorizationLevel.Function || x.Trigger.AuthLevel == AuthorizationLevel.Admin,
            string.Join(", ", triggers.Where(x => x.Trigger!.AuthLevel is AuthorizationLevel.Anonymous or AuthorizationLevel.User).Select(x => x.Method.Name)));
    }

    /// <summary>Publishes a real tiny model as version 1 of <c>shield</c>, then changes one byte of its weights in the registry.</summary>
    private async Task<(ModelRegistry Registry, LocalFiles Files)> TamperedVersionAsync()
    {
        var blobs = new FolderBlobStore(_home);
        var files = new LocalFiles(blobs);
        var registry = new ModelRegistry(blobs, files, TimeProvider.System);
        var candidate = Path.Combine(_home, "candidate");
        Harness.TinyModel.Save(candidate);

        File.WriteAllText(Path.Combine(candidate, "metrics.json"), "{}");
        File.WriteAllText(Path.Combine(candidate, "report.md"), "# report");
        File.WriteAllBytes(Path.Combine(candidate, "loss.png"), [0x89, 0x50]);
        await files.UploadDirectoryAsync(candidate, Containers.Checkpoints, "job-1/candidate/", last: "config.json");
        (await registry.PublishAsync("shield", "job-1", "job-1/candidate/", 10, new JsonObject(), "# shield")).Version.ShouldBe(1);

        var weights = Path.Combine(_home, Containers.Registry, "shield", "1", "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x01;                                           // one bit of one weight
        File.WriteAllBytes(weights, bytes);
        return (registry, files);
    }

    [Fact]
    public async Task TamperedRegistryWeights_AreRefusedForGeneration()
    {
        await TamperedVersionAsync();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = Serverless.Cli.TuneCli.Run(["generate", "--model", "shield@latest", "--home", _home, "--prompt", "hi", "--max-new-tokens", "2"], output, error);
        code.ShouldNotBe(0);
        error.ToString().ShouldContain("model.safetensors does not match its manifest");
        output.ToString().ShouldBeEmpty();
    }

    [Fact]
    public async Task TamperedRegistryWeights_AreRefusedAsABaseOrTeacherModel()
    {
        var (registry, files) = await TamperedVersionAsync();
        var resolver = new ModelResolver(files, registry, new PipelineOptions { WorkDirectory = Path.Combine(_home, "work") });
        var refused = await Should.ThrowAsync<InvalidDataException>(() => resolver.ResolveAsync("shield@champion"));
        refused.Message.ShouldContain("does not match its manifest");
        refused.Message.ShouldContain("refusing to use it");
        // The config alone (what Prepare reads) is intact and still verified.
        (await resolver.ResolveConfigAsync("shield@champion")).ShouldNotBeNull();
    }
}

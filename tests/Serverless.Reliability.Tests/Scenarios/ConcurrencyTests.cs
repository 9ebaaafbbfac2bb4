using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Naming;
using Serverless.Embedded.Blobs;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Resilience;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>Racing publishers for one model, on flaky storage.</summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class ConcurrencyTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "race-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public async Task TenPublishesRacingForOneModel_TenDistinctVersions_IndexListsAll_AliasesRight()
    {
        var watch = Figures.Start();
        var counters = new PortPolicyCounters();
        var folder = new FolderBlobStore(_home);
        var (blobs, _) = PortPolicies.Wrap(folder, new Serverless.Embedded.Messaging.SqliteMessageBus(Path.Combine(_home, "bus.db")),
            new ChaosOptions(0.2, 0.2, TimeSpan.FromMilliseconds(5)), counters);
        var jobs = Enumerable.Range(0, 10).Select(i => $"job-{i}").ToList();
        foreach (var job in jobs)
        {
            foreach (var file in ModelRegistry.VersionFiles)
            {
                await folder.WriteAsync(Containers.Checkpoints, $"{job}/candidate/{file}", new MemoryStream(Encoding.UTF8.GetBytes($"{job} {file}")));
            }
        }

        // Each publisher has its own registry object, as separate workers would; a head of 3 versions, so versions
        // leave it (to their entries) while others race.
        var results = await Task.WhenAll(jobs.Select((job, i) => Task.Run(() =>
            new ModelRegistry(blobs, new LocalFiles(blobs), TimeProvider.System, headVersions: 3).PublishAsync("racy", job, $"{job}/candidate/", 20 - i, new JsonObject { ["job"] = job }, $"# {job}"))));

        var registry = new ModelRegistry(folder, new LocalFiles(folder), TimeProvider.System);
        var index = (await registry.ReadIndexAsync("racy"))!.Value.Index;
        var versions = (await registry.ListVersionsAsync("racy"))!;
        Figures.Add(new Figure("10 publishes racing for one model (20 % storage faults)", 10, counters.FaultsInjected, 10, versions.Count(v => v.State == "ready"),
            10 - results.Select(r => r.Version).Distinct().Count(), 10 - versions.Count, watch.Elapsed, $"{counters.Retries} retries"));
        results.Select(r => r.Version).Order().ShouldBe(Enumerable.Range(1, 10));
        versions.Select(v => v.JobId).Order().ShouldBe(jobs);
        versions.ShouldAllBe(v => v.State == "ready");
        index.Aliases["latest"].ShouldBe(10);
        index.ReadyCount.ShouldBe(10);
        index.Aliases["champion"].ShouldBe(versions.MinBy(v => v.Perplexity)!.Version);
        foreach (var v in versions)
        {
            File.ReadAllText(Path.Combine(_home, Containers.Registry, "racy", v.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), "model.safetensors")).ShouldBe($"{v.JobId} model.safetensors");
        }
    }
}

using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Naming;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Messaging;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Publish;

namespace Serverless.Cli.Tests.Pipeline;

public sealed class ScheduleAndRegistryTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "sched-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_home, recursive: true);
    }

    [Fact]
    public async Task Schedule_DueOnce_NotAgainInTheSameOccurrence_NotWhenDataUnchanged()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 3, 29, 0, 59, 30, TimeSpan.Zero));
        using var pipeline = new Serverless.Cli.Pipeline.EmbeddedPipeline(_home, clock: clock);
        var runtime = pipeline.Runtime;
        await runtime.Bus.EnsureTopologyAsync();
        var spec = new JsonObject { ["retrain"] = new JsonObject { ["cron"] = "0 * * * *", ["onlyIfDataChanged"] = true } };
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "nightly/tune.json", new MemoryStream(Encoding.UTF8.GetBytes(spec.ToJsonString())));
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "nightly/a.txt", new MemoryStream("one\n\ntwo"u8.ToArray()));

        (await runtime.Schedule.HandleAsync(clock.GetUtcNow())).ShouldBeEmpty("01:00 has not come yet");
        clock.Advance(TimeSpan.FromMinutes(1));                                  // 01:00:30 — the occurrence passed
        (await runtime.Schedule.HandleAsync(clock.GetUtcNow())).ShouldBe(["nightly"]);
        clock.Advance(TimeSpan.FromSeconds(20));
        (await runtime.Schedule.HandleAsync(clock.GetUtcNow())).ShouldBeEmpty("the same occurrence never fires twice");

        var requests = await pipeline.Bus.ReceiveAsync(Entities.FineTuneRequests, 10);
        requests.Count.ShouldBe(1);
        await runtime.Prepare.HandleAsync(Serverless.Core.Contracts.CloudEvent.Parse(requests[0].Body).DataAs<Serverless.Core.Contracts.FineTuneRequested>());

        clock.Advance(TimeSpan.FromHours(1));                                     // 02:00:50 — due, but the data did not change
        (await runtime.Schedule.HandleAsync(clock.GetUtcNow())).ShouldBeEmpty();
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "nightly/b.txt", new MemoryStream("three\n\nfour"u8.ToArray()));
        clock.Advance(TimeSpan.FromHours(1));                                     // 03:00:50 — new data
        (await runtime.Schedule.HandleAsync(clock.GetUtcNow())).ShouldBe(["nightly"]);
    }

    [Fact]
    public async Task Schedule_AfterDowntime_RunsOnlyTheLatestMissedOccurrence()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 9, 59, 0, TimeSpan.Zero));
        using var pipeline = new Serverless.Cli.Pipeline.EmbeddedPipeline(_home, clock: clock);
        await pipeline.Runtime.Bus.EnsureTopologyAsync();
        var spec = new JsonObject { ["retrain"] = new JsonObject { ["cron"] = "*/15 * * * *", ["onlyIfDataChanged"] = false } };
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "m/tune.json", new MemoryStream(Encoding.UTF8.GetBytes(spec.ToJsonString())));
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "m/a.txt", new MemoryStream("x\n\ny"u8.ToArray()));
        await pipeline.Runtime.Schedule.HandleAsync(clock.GetUtcNow());
        clock.Advance(TimeSpan.FromHours(2));                                     // down for two hours: eight occurrences passed
        (await pipeline.Runtime.Schedule.HandleAsync(clock.GetUtcNow())).ShouldBe(["m"]);
        (await pipeline.Bus.ReceiveAsync(Entities.FineTuneRequests, 20)).Count.ShouldBe(1);
    }

    [Fact]
    public async Task ConcurrentPublishes_ForOneModel_GetDistinctVersions()
    {
        var blobs = new FolderBlobStore(_home);
        var registry = new ModelRegistry(blobs, new LocalFiles(blobs), TimeProvider.System);
        var jobs = Enumerable.Range(0, 6).Select(i => $"job-{i}").ToList();
        foreach (var job in jobs)
        {
            foreach (var file in ModelRegistry.VersionFiles)
            {
                await blobs.WriteAsync(Containers.Checkpoints, $"{job}/candidate/{file}", new MemoryStream(Encoding.UTF8.GetBytes($"{job} {file}")));
            }
        }

        var results = await Task.WhenAll(jobs.Select((job, i) => Task.Run(() =>
            registry.PublishAsync("racy", job, $"{job}/candidate/", 10 - i, new JsonObject { ["job"] = job }, $"# {job}"))));

        results.Select(r => r.Version).Order().ShouldBe([1, 2, 3, 4, 5, 6]);
        var index = (await registry.ReadIndexAsync("racy"))!.Value.Index;
        index.Versions.Select(v => v.JobId).Order().ShouldBe(jobs);
        index.Versions.ShouldAllBe(v => v.State == "ready");
        index.Aliases["latest"].ShouldBe(6);
        index.Aliases["champion"].ShouldBe(index.Versions.MinBy(v => v.Perplexity)!.Version);
        foreach (var v in index.Versions)
        {
            File.ReadAllText(Path.Combine(_home, Containers.Registry, "racy", v.Version.ToString(), "config.json")).ShouldBe($"{v.JobId} config.json");
        }

        (await registry.PublishAsync("racy", "job-0", "job-0/candidate/", 10, [], "# again")).Version
            .ShouldBe(index.Versions.Single(v => v.JobId == "job-0").Version, "a job publishes at most one version");
    }

    [Fact]
    public async Task Registry_AnIndexOfEveryVersion_IsTrimmedToItsHeadByTheNextPublish_AndEveryVersionStaysReachable()
    {
        var blobs = new FolderBlobStore(_home);
        var registry = new ModelRegistry(blobs, new LocalFiles(blobs), TimeProvider.System, headVersions: 5);
        foreach (var file in ModelRegistry.VersionFiles)
        {
            await blobs.WriteAsync(Containers.Checkpoints, $"c/candidate/{file}", new MemoryStream(Encoding.UTF8.GetBytes(file)));
        }

        // An index as the registry wrote it before it had a head: 30 versions in index.json, version 7 the champion.
        var old = new JsonObject
        {
            ["model"] = "deep",
            ["versions"] = new JsonArray([.. Enumerable.Range(1, 30).Select(v => (JsonNode)new JsonObject
            {
                ["version"] = v, ["jobId"] = $"job-{v}", ["state"] = "ready", ["createdAt"] = "2026-01-01T00:00:00+00:00", ["perplexity"] = v == 7 ? 2.0 : 10.0,
            })]),
            ["aliases"] = new JsonObject { ["latest"] = 30, ["champion"] = 7 },
        };
        await blobs.WriteAsync(Containers.Registry, "deep/index.json", new MemoryStream(Encoding.UTF8.GetBytes(old.ToJsonString())));
        (await registry.FindVersionAsync("deep", "3")).ShouldBe(3, "an old index is read as it is");

        var published = await registry.PublishAsync("deep", "job-31", "c/candidate/", 9, [], "# 31");

        published.Version.ShouldBe(31);
        published.Aliases.ShouldBe(["latest"]);
        var index = (await registry.ReadIndexAsync("deep"))!.Value.Index;
        index.Versions.Select(v => v.Version).ShouldBe([7, 27, 28, 29, 30, 31], "the newest five and the champion");
        (index.Latest, index.ReadyCount, index.HasOlder).ShouldBe((31, 31, true));
        File.Exists(Path.Combine(_home, Containers.Registry, "deep", "version-0000000003.json")).ShouldBeTrue();
        var all = (await registry.ListVersionsAsync("deep"))!;
        all.Select(v => v.Version).ShouldBe(Enumerable.Range(1, 31).Reverse());
        (await registry.ListVersionsAsync("deep", limit: 8))!.Select(v => v.Version).ShouldBe([31, 30, 29, 28, 27, 26, 25, 24], "the newest, from the head and the entries");
        (await registry.ListVersionsAsync("deep", limit: 6))!.Select(v => v.Version).ShouldBe([31, 30, 29, 28, 27, 26], "not the old champion the head also holds");
        (await registry.PublishAsync("deep", "job-3", "c/candidate/", 9, [], "# 3")).Version.ShouldBe(3, "a version from before the upgrade got its job's claim as it left the head");
        (await registry.FindVersionAsync("deep", "3")).ShouldBe(3);
        (await registry.FindVersionAsync("deep", "champion")).ShouldBe(7);
        (await registry.FindVersionAsync("deep", "32")).ShouldBeNull();
        (await registry.GetVersionAsync("deep", 3))!.JobId.ShouldBe("job-3");

        // A job whose version left the head long ago still yields that version, not a new one.
        (await registry.PublishAsync("deep", "job-31", "c/candidate/", 9, [], "# 31")).Version.ShouldBe(31);
        for (var v = 32; v <= 40; v++)
        {
            await registry.PublishAsync("deep", $"job-{v}", "c/candidate/", 9, [], $"# {v}");
        }

        (await registry.PublishAsync("deep", "job-31", "c/candidate/", 9, [], "# 31")).Version.ShouldBe(31, "its claim record names it");
        index = (await registry.ReadIndexAsync("deep"))!.Value.Index;
        (index.Versions.Count, index.ReadyCount, index.Aliases["latest"], index.Aliases["champion"]).ShouldBe((6, 40, 40, 7));
    }

    [Fact]
    public async Task Publish_CopiesTheDataEfficiencyPlot_WhenTheCandidateHasOne_AndNeedsItNot()
    {
        var blobs = new FolderBlobStore(_home);
        var registry = new ModelRegistry(blobs, new LocalFiles(blobs), TimeProvider.System);
        foreach (var job in new[] { "with-curve", "without" })
        {
            foreach (var file in ModelRegistry.VersionFiles.Concat(job == "with-curve" ? ["transfer.png"] : []))
            {
                await blobs.WriteAsync(Containers.Checkpoints, $"{job}/candidate/{file}", new MemoryStream(Encoding.UTF8.GetBytes($"{job} {file}")));
            }
        }

        var curve = await registry.PublishAsync("m", "with-curve", "with-curve/candidate/", 10, [], "# with");
        curve.Files.Keys.ShouldContain("transfer.png");
        File.ReadAllText(Path.Combine(_home, Containers.Registry, "m", curve.Version.ToString(), "transfer.png")).ShouldBe("with-curve transfer.png");
        var plain = await registry.PublishAsync("m", "without", "without/candidate/", 9, [], "# without");
        plain.Files.Keys.ShouldNotContain("transfer.png");
        plain.Files.Keys.ShouldContain("loss.png");

        await blobs.DeleteAsync(Containers.Checkpoints, "without/candidate/loss.png");
        (await Should.ThrowAsync<InvalidOperationException>(() => registry.PublishAsync("n", "without", "without/candidate/", 9, [], "# x")))
            .Message.ShouldContain("has no loss.png");
    }
}

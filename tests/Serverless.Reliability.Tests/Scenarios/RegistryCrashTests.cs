using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Embedded.Blobs;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Publish;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>
/// A publish killed at each of its registry writes — the claim in the head, the job's claim record, every copied file,
/// the card, the manifest, the entries of versions leaving the head, the head marked ready — just before the write and
/// just after it, into a model whose head is already full; then the publish repeated by a fresh worker, and the next
/// job published. Each job ends with exactly one ready version, every version is listed once, the head's count is
/// right, and every file matches its manifest.
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class RegistryCrashTests
{
    private const int Head = 2;

    [Fact]
    public async Task PublishKilledAtEveryRegistryWrite_RepeatedByAFreshWorker_OneVersionPerJob()
    {
        var watch = Figures.Start();
        var (crashes, runs, duplicates, lost) = (0, 0, 0, 0);
        var points = new HashSet<string>(StringComparer.Ordinal);
        foreach (var after in new[] { false, true })
        {
            for (var target = 1; ; target++)
            {
                var home = Path.Combine(Path.GetTempPath(), "registry-crash-" + Guid.NewGuid().ToString("N"));
                try
                {
                    var folder = new FolderBlobStore(home);
                    var jobs = Enumerable.Range(1, 5).Select(i => $"job-{i}").ToList();
                    foreach (var job in jobs)
                    {
                        foreach (var file in ModelRegistry.VersionFiles)
                        {
                            await folder.WriteAsync(Containers.Checkpoints, $"{job}/candidate/{file}", new MemoryStream(Encoding.UTF8.GetBytes($"{job} {file}")));
                        }
                    }

                    for (var i = 0; i < 3; i++)
                    {
                        await PublishAsync(folder, jobs[i], i);
                    }

                    var writes = 0;
                    var crash = new CrashPoint($"registry write {target}", onWrite: (c, n, _) => c == Containers.Registry && ++writes == target && points.Add(Kind(n)) | true, after: after);
                    var (crashing, _) = crash.Wrap((folder, null!));
                    runs++;
                    try
                    {
                        await PublishAsync(crashing, jobs[3], 3);
                    }
                    catch (SimulatedCrashException)
                    {
                    }

                    if (!crash.Fired)
                    {
                        if (writes < target)
                        {
                            break;   // past the publish's last write
                        }

                        continue;    // "after" a write that found its blob already there: nothing was written to crash after
                    }

                    crashes++;
                    var repeated = await PublishAsync(folder, jobs[3], 3);
                    await PublishAsync(folder, jobs[4], 4);
                    (await PublishAsync(folder, jobs[3], 3)).Version.ShouldBe(repeated.Version, "a job publishes one version, however often it is repeated");

                    var registry = new ModelRegistry(folder, new LocalFiles(folder), TimeProvider.System, Head);
                    var versions = (await registry.ListVersionsAsync("m"))!;
                    duplicates += versions.Count - versions.Select(v => v.JobId).Distinct().Count();
                    lost += jobs.Count(j => versions.All(v => v.JobId != j));
                    var where = $"{(after ? "after" : "before")} registry write {target}";
                    versions.Select(v => v.Version).Order().ToList().ShouldBe([1, 2, 3, 4, 5], customMessage: where);
                    versions.Select(v => v.JobId).Order().ToList().ShouldBe(jobs, customMessage: where);
                    versions.ShouldAllBe(v => v.State == "ready", where);
                    var index = (await registry.ReadIndexAsync("m"))!.Value.Index;
                    index.ReadyCount.ShouldBe(5, where);
                    index.Versions.Count.ShouldBeLessThanOrEqualTo(Head + 1, where);   // the newest two and the champion
                    index.Aliases["latest"].ShouldBe(5, where);
                    index.Aliases["champion"].ShouldBe(versions.MinBy(v => v.Perplexity)!.Version, where);
                    foreach (var v in versions)
                    {
                        var dir = Path.Combine(home, Containers.Registry, "m", v.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        foreach (var (file, hash) in JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!["files"]!.AsObject())
                        {
                            Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, file)))).ShouldBe(hash!.GetValue<string>(), $"{where}: {v.Version}/{file}");
                        }

                        File.ReadAllText(Path.Combine(dir, "model.safetensors")).ShouldBe($"{v.JobId} model.safetensors", where);
                    }
                }
                finally
                {
                    Directory.Delete(home, recursive: true);
                }
            }
        }

        points.ShouldBe(["index.json", "job claim", "config.json", "model.safetensors", "metrics.json", "report.md", "loss.png", "README.md", "manifest.json", "version entry"], ignoreOrder: true);
        crashes.ShouldBeGreaterThanOrEqualTo(2 * 11, "a dozen registry writes (the head twice), each crashed before and after");
        Figures.Add(new Figure("publish killed at each registry write (before and after), head full", runs, crashes, 2 * crashes, 2 * crashes - lost, duplicates, lost, watch.Elapsed,
            $"{crashes} crashes over {points.Count} kinds of write; each publish repeated by a fresh worker: one version per job, head count right"));
    }

    private static string Kind(string name) => name.Split('/')[^1] switch
    {
        var file when file.StartsWith("job-", StringComparison.Ordinal) => "job claim",
        var file when file.StartsWith("version-", StringComparison.Ordinal) => "version entry",
        var file => file,
    };

    /// <summary>Job i's perplexity falls with i, but the first job's is the lowest: the champion stays version 1, in the head, while newer versions move out of it.</summary>
    private static Task<PublishedVersion> PublishAsync(IBlobStore blobs, string job, int i) =>
        new ModelRegistry(blobs, new LocalFiles(blobs), TimeProvider.System, Head)
            .PublishAsync("m", job, $"{job}/candidate/", i == 0 ? 1 : 20 - i, new JsonObject { ["job"] = job }, $"# {job}");
}

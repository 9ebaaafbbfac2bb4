using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Data;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.BadInput;

/// <summary>
/// Every malformed dataset, spec and event of the corpus, through the real Prepare stage and its message pump: each
/// ends in its own clear rejection (a failed job + DatasetRejected naming the problem, or a dead-lettered event with
/// the reason), with memory bounded, and a good dataset prepared alongside is not disturbed.
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class PipelineRejectionTests
{
    [Fact]
    public async Task EveryMalformedDatasetAndSpec_IsRejectedWithItsOwnError_AndAGoodDatasetStillPrepares()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.StopAsync();   // Prepare is driven directly, one input at a time
        using var pipeline = new Serverless.Cli.Pipeline.EmbeddedPipeline(cluster.Home, chaos: null);
        await pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, "rejections", SubscriptionFilter.Types(nameof(DatasetRejected)));
        var generated = Directory.CreateTempSubdirectory("generated-").FullName;
        var cases = new List<(string Model, string What, string Expected)>();
        var index = 0;

        async Task Submit(string what, string expected, string? file, byte[]? content, string spec)
        {
            var model = $"bad-{index++}";
            await cluster.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", spec);
            await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/{file ?? "a.txt"}", new MemoryStream(content ?? "a fine document\n"u8.ToArray()));
            await pipeline.Runtime.Prepare.HandleAsync(new FineTuneRequested(model, "upload", "upload"));
            cases.Add((model, what, expected));
        }

        var spec = Cluster.Spec().ToJsonString();
        foreach (var (keys, expected) in Corpus.Table("datasets/expected.tsv"))
        {
            await Submit($"dataset {keys[0]}", expected, keys[0], File.ReadAllBytes(Path.Combine(Corpus.Root, "datasets", keys[0])), spec);
        }

        foreach (var (keys, expected) in Corpus.Table("datasets/generated.tsv"))
        {
            var path = Corpus.Generate(keys[0], generated);
            await Submit($"dataset {keys[0]} (generated)", expected, keys[0], File.ReadAllBytes(path), spec);
            File.Delete(path);
        }

        foreach (var (keys, expected) in Corpus.Table("specs/expected.tsv"))
        {
            var text = File.ReadAllText(Path.Combine(Corpus.Root, "specs", keys[0]));
            // Specs are merged over the test's base settings when they are objects, so only the bad field is wrong.
            if (TryParse(text) is JsonObject fields && !text.Contains("NaN", StringComparison.Ordinal) && !text.Contains("1e999", StringComparison.Ordinal))
            {
                var merged = Cluster.Spec();
                foreach (var (k, v) in fields)
                {
                    merged[k] = v?.DeepClone();
                }

                text = merged.ToJsonString();
            }

            await Submit($"spec {keys[0]}", expected, null, null, text);
        }

        foreach (var (keys, expected) in Corpus.Table("names.tsv").Where(r => r.Keys[0] == "files-differing-in-case"))
        {
            var model = $"bad-{index++}";
            await cluster.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", spec);
            foreach (var file in Corpus.Json<string[]>(keys[1]))
            {
                await cluster.WriteAsync(Containers.Datasets, $"{model}/{file}", "a fine document\n");
            }

            await pipeline.Runtime.Prepare.HandleAsync(new FineTuneRequested(model, "upload", "upload"));
            cases.Add((model, $"file names {keys[1]}", expected));
        }

        // A good dataset prepared after all of that.
        await cluster.DropAsync("good", "a.jsonl", Cluster.Corpus(30), Cluster.Spec());
        var goodJob = await pipeline.Runtime.Prepare.HandleAsync(new FineTuneRequested("good", "upload", "upload"));
        Directory.Delete(generated, recursive: true);

        var jobs = (await cluster.JobsAsync()).ToDictionary(j => j.Model);
        var wrong = new List<string>();
        foreach (var (model, what, expected) in cases)
        {
            if (!jobs.TryGetValue(model, out var job))
            {
                wrong.Add($"{what}: no job");
                continue;
            }

            var said = job.Error + "\n" + string.Join("\n", job.DatasetErrors?.Select(e => e.Message) ?? []);
            if (job.State != JobState.Failed || !said.Contains(expected, StringComparison.OrdinalIgnoreCase))
            {
                wrong.Add($"{what}: {job.State}, expected an error with \"{expected}\", got: {said.Trim().Split('\n')[0]}");
            }
        }

        var rejections = await RejectionsAsync(pipeline);

        Figures.Add(new Figure("bad input — datasets, specs and file names through Prepare", cases.Count, 0, cases.Count, cases.Count - wrong.Count, 0, 0, watch.Elapsed,
            $"{cases.Count} inputs, {cases.Count - wrong.Count} rejected with their specific error, {rejections.Count} DatasetRejected events; the good dataset prepared"));
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
        cases.Count.ShouldBeGreaterThan(120);
        cases.Select(c => c.Model).Except(rejections).ShouldBeEmpty("every rejection is announced");
        jobs["good"].State.ShouldBe(JobState.Dispatched, $"{goodJob}: {jobs["good"].Error}");
    }

    /// <summary>The models of every DatasetRejected on the test's "rejections" subscription (drained).</summary>
    internal static async Task<HashSet<string>> RejectionsAsync(Serverless.Cli.Pipeline.EmbeddedPipeline pipeline)
    {
        var rejections = new HashSet<string>();
        var subscription = Entities.Subscription(Entities.ModelEvents, "rejections");
        while (await pipeline.Bus.ReceiveAsync(subscription, 100) is { Count: > 0 } batch)
        {
            foreach (var message in batch)
            {
                rejections.Add(CloudEvent.Parse(message.Body).Subject);
                await pipeline.Bus.CompleteAsync(subscription, message);
            }
        }

        return rejections;
    }

    private static JsonNode? TryParse(string text)
    {
        try
        {
            return JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    [Fact]
    public async Task EveryMalformedEvent_IsDeadLetteredAtOnceWithTheReason_AndTheNextGoodOneIsHandled()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.StopAsync();
        using var pipeline = new Serverless.Cli.Pipeline.EmbeddedPipeline(cluster.Home, chaos: null, configure: o => o with { Entities = Cluster.Entities });
        var rows = Corpus.Table("events.tsv");
        for (var i = 0; i < rows.Count; i++)
        {
            await pipeline.Bus.SendAsync(Entities.FineTuneRequests, new OutgoingMessage($"event-{i}", Corpus.Json<string>(rows[i].Keys[1])));
        }

        await cluster.DropAsync("after", "a.jsonl", Cluster.Corpus(30), Cluster.Spec());
        var good = CloudEvent.Create(new FineTuneRequested("after", "upload", "upload"), "good", "/tests", DateTimeOffset.UtcNow);
        await pipeline.Bus.SendAsync(Entities.FineTuneRequests, new OutgoingMessage("good", good.ToJson()));

        var prepare = pipeline.Runtime.Pumps()[0];
        while (await prepare.DrainOnceAsync() > 0)
        {
        }

        var dead = (await pipeline.Bus.PeekDeadLettersAsync(Entities.FineTuneRequests, 1000)).ToDictionary(d => d.MessageId);
        var wrong = new List<string>();
        for (var i = 0; i < rows.Count; i++)
        {
            if (!dead.TryGetValue($"event-{i}", out var letter))
            {
                wrong.Add($"{rows[i].Keys[0]}: not dead-lettered");
            }
            else if (letter.Reason != DeadLetterReasons.InvalidEvent || letter.DeliveryCount != 1 || !letter.Description.Contains(rows[i].Expected, StringComparison.OrdinalIgnoreCase))
            {
                wrong.Add($"{rows[i].Keys[0]}: {letter.Reason} after {letter.DeliveryCount} deliveries, expected \"{rows[i].Expected}\", got: {letter.Description}");
            }
        }

        Figures.Add(new Figure("bad input — event payloads", rows.Count, 0, 1, (await cluster.JobsAsync()).Count, 0, 0, watch.Elapsed,
            $"{rows.Count - wrong.Count} of {rows.Count} dead-lettered on first delivery with their reason"));
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
        dead.ShouldNotContainKey("good");
        (await cluster.JobsAsync()).Single().Model.ShouldBe("after", "the good event after the bad ones was handled");
    }

    [Fact]
    public void MalformedDatasets_AreReadWithBoundedMemory()
    {
        var generated = Directory.CreateTempSubdirectory("generated-").FullName;
        try
        {
            var files = Corpus.Table("datasets/expected.tsv").Select(r => Path.Combine(Corpus.Root, "datasets", r.Keys[0]))
                .Concat(Corpus.Table("datasets/generated.tsv").Select(r => Corpus.Generate(r.Keys[0], generated)));
            var worst = (File: "", Bytes: 0L, Size: 0L);
            var largest = (File: "", Bytes: 0L);
            foreach (var file in files)
            {
                var errors = new DatasetErrors();
                var size = new FileInfo(file).Length;
                var before = GC.GetAllocatedBytesForCurrentThread();
                var documents = new DatasetReader().Read(file, errors).Count();
                var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                errors.Any.ShouldBeTrue($"{Path.GetFileName(file)} was accepted ({documents} documents)");
                // Linear in the input at worst (strings for the lines kept), never more: 16 MiB + 32 bytes per input byte.
                allocated.ShouldBeLessThan((16L << 20) + (32 * size), $"{Path.GetFileName(file)} allocated {allocated >> 20} MiB for {size >> 20} MiB");
                if (allocated > worst.Bytes)
                {
                    worst = (Path.GetFileName(file), allocated, size);
                }

                if (size > 50 << 20 && allocated > largest.Bytes)
                {
                    largest = (Path.GetFileName(file), allocated);
                }
            }

            Figures.Add(new Figure("bad input — memory while reading", 1, 0, 0, 0, 0, 0, TimeSpan.Zero,
                $"most allocated for one file: {worst.Bytes >> 20} MiB ({worst.File}, {worst.Size >> 20} MiB on disk); a 100 MiB line: {largest.Bytes >> 20} MiB"));
            largest.Bytes.ShouldBeLessThan(16L << 20, $"a 100 MiB single line is streamed past, never held ({largest.File})");
        }
        finally
        {
            Directory.Delete(generated, recursive: true);
        }
    }
}

using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Embedded.Messaging;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary>
/// <c>tune bench pipeline</c>: latency from a file written to its job dispatched, and from <c>ModelPublished</c>
/// published to a subscriber holding it, over real runs of the embedded pipeline (tiny model, one training step, real
/// trainer processes); and the embedded bus's throughput (send + receive + complete per second).
/// </summary>
internal static class PipelineBench
{
    public static Dictionary<string, object> Run(int runs, TextWriter? log)
    {
        var results = new Dictionary<string, object> { ["bus_messages_per_second"] = BusThroughput(4000) };
        log?.WriteLine($"embedded bus: {results["bus_messages_per_second"]:N0} messages/s (send + receive + complete, batches of 32)");

        var home = Path.Combine(Path.GetTempPath(), "tune-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (dispatch, subscriber) = Latencies(home, runs, log).GetAwaiter().GetResult();
            results["file_to_dispatch_ms_p50"] = Percentile(dispatch, 0.5);
            results["file_to_dispatch_ms_p99"] = Percentile(dispatch, 0.99);
            results["published_to_subscriber_ms_p50"] = Percentile(subscriber, 0.5);
            results["published_to_subscriber_ms_p99"] = Percentile(subscriber, 0.99);
            results["runs"] = runs;
            log?.WriteLine($"file written → job dispatched: p50 {results["file_to_dispatch_ms_p50"]:F0} ms, p99 {results["file_to_dispatch_ms_p99"]:F0} ms ({runs} runs)");
            log?.WriteLine($"ModelPublished → subscriber: p50 {results["published_to_subscriber_ms_p50"]:F0} ms, p99 {results["published_to_subscriber_ms_p99"]:F0} ms");
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(home, recursive: true);
        }

        return results;
    }

    /// <summary>The bus with one receiver, measured as <c>tune bench scale</c> measures it with more.</summary>
    private static double BusThroughput(int count) => ScaleBench.BusThroughput(count, receivers: 1);

    private static async Task<(List<double> Dispatch, List<double> Subscriber)> Latencies(string home, int runs, TextWriter? log)
    {
        using var pipeline = new EmbeddedPipeline(home);
        SaveTinyBase(home);

        await pipeline.Runtime.Bus.EnsureTopologyAsync();
        await pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, "bench", SubscriptionFilter.All);
        var entity = Entities.Subscription(Entities.ModelEvents, "bench");
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        var spec = OneStepSpec();
        var dispatch = new List<double>();
        var subscriber = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            var model = $"bench{run}";
            await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", new MemoryStream(Encoding.UTF8.GetBytes(spec.ToJsonString())));
            var corpus = Corpus(run);
            var written = DateTimeOffset.UtcNow;
            await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/data.jsonl", new MemoryStream(Encoding.UTF8.GetBytes(corpus)));

            CloudEvent? published = null;
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (published is null)
            {
                foreach (var message in await pipeline.Bus.ReceiveAsync(entity, 10))
                {
                    var received = DateTimeOffset.UtcNow;
                    await pipeline.Bus.CompleteAsync(entity, message);
                    var e = CloudEvent.Parse(message.Body);
                    if (e.Subject == model)
                    {
                        published = e;
                        subscriber.Add((received - e.Time).TotalMilliseconds);
                    }
                }

                if (DateTime.UtcNow > deadline || running.IsFaulted)
                {
                    await stop.CancelAsync();
                    await running;
                    throw new TimeoutException($"bench run {run}: no model event within two minutes.");
                }

                await Task.Delay(20);
            }

            await foreach (var job in pipeline.Runtime.Jobs.ListAsync(model))
            {
                var dispatched = job.History.First(t => t.State == JobState.Dispatched).At;
                dispatch.Add((dispatched - written).TotalMilliseconds);
            }

            log?.Write(".");
        }

        log?.WriteLine();
        await stop.CancelAsync();
        await running;
        return (dispatch, subscriber);
    }

    /// <summary>A one-layer byte model, <c>base-models/bench-base</c>: the trainer's start-up, not its arithmetic, is what the pipeline benchmarks time.</summary>
    internal static void SaveTinyBase(string home)
    {
        var config = Pretraining.ConfigFor("tiny", "bytes") with { NLayer = 1, NEmbd = 32, NHead = 2, NPositions = 32 };
        using var model = new Gpt2Model(config, seed: 1);
        model.SavePretrained(Path.Combine(home, Containers.BaseModels, "bench-base"));
    }

    /// <summary>One training step on the tiny base, no scratch run, a gate that always publishes.</summary>
    internal static JsonObject OneStepSpec() => new()
    {
        ["baseModel"] = "bench-base", ["debounceSeconds"] = 0, ["steps"] = 1, ["batchSize"] = 2, ["blockSize"] = 16, ["warmupSteps"] = 0,
        ["evalEvery"] = 1, ["evalTokens"] = 64, ["sampleTokens"] = 0, ["compareWithScratch"] = false,
        ["gate"] = new JsonObject { ["minImprovementOverBase"] = -1, ["mustBeatChampion"] = false },
    };

    internal static string Corpus(int run) => string.Concat(Enumerable.Range(0, 20).Select(i => $"{{\"text\": \"bench {run} document {i} with a few words\"}}\n"));

    internal static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[(int)Math.Min(sorted.Count - 1, Math.Ceiling(p * sorted.Count) - 1)];
    }
}

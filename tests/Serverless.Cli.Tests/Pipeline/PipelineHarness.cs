using System.Text;
using System.Text.Json.Nodes;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Cli.Tests.Pipeline;

/// <summary>
/// The embedded pipeline in a temporary home, running in the background as `tune up` does (real SQLite broker, real
/// folder store, trainers as real child processes), with a tiny random base model and a model-events subscriber.
/// </summary>
internal sealed class PipelineHarness : IAsyncDisposable
{
    public const string BaseModel = "tiny-base";
    private readonly CancellationTokenSource _stop = new();
    private Task? _running;

    public PipelineHarness(int maxConcurrentJobs = 1)
    {
        Home = Path.Combine(Path.GetTempPath(), "pipeline-" + Guid.NewGuid().ToString("N"));
        Pipeline = new EmbeddedPipeline(Home, maxConcurrentJobs);
        var config = new Gpt2Config
        {
            VocabSize = ByteTokenizer.VocabularySize, NPositions = 32, NEmbd = 32, NLayer = 2, NHead = 4,
            BosTokenId = 256, EosTokenId = 256, Tokenizer = ByteTokenizer.TokenizerName,
        };
        using var model = new Gpt2Model(config, seed: 1);
        model.SavePretrained(Path.Combine(Home, Containers.BaseModels, BaseModel));
    }

    public string Home { get; }

    public EmbeddedPipeline Pipeline { get; }

    public const string Subscriber = "test-subscriber";

    public static JsonObject Spec(int steps = 6, double minImprovement = 0, int checkpointEvery = 3) => new()
    {
        ["baseModel"] = BaseModel,
        ["debounceSeconds"] = 0.2,
        ["gate"] = new JsonObject { ["minImprovementOverBase"] = minImprovement, ["mustBeatChampion"] = false },
        ["steps"] = steps,
        ["batchSize"] = 4,
        ["blockSize"] = 16,
        ["warmupSteps"] = 1,
        ["learningRate"] = 3e-3,
        ["evalEvery"] = 3,
        ["evalTokens"] = 500,
        ["checkpointEvery"] = checkpointEvery,
        ["earlyStoppingPatience"] = 0,
        ["sampleTokens"] = 0,
    };

    public static string Corpus(int documents, string flavour = "") =>
        string.Concat(Enumerable.Range(0, documents).Select(i => $"{{\"text\": \"Document {i}{flavour}: the quick brown fox jumps over the lazy dog {i % 5} times.\"}}\n"));

    public async Task StartAsync()
    {
        await Pipeline.Runtime.Bus.EnsureTopologyAsync();
        await Pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, Subscriber, SubscriptionFilter.All);
        _running = Pipeline.RunAsync(_stop.Token);
    }

    public async Task WriteAsync(string container, string name, string text) =>
        await Pipeline.Blobs.WriteAsync(container, name, new MemoryStream(Encoding.UTF8.GetBytes(text)));

    public async Task DropAsync(string model, string file, string text, JsonObject? spec = null)
    {
        if (spec is not null)
        {
            await WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", spec.ToJsonString());
        }

        await WriteAsync(Containers.Datasets, $"{model}/{file}", text);
    }

    /// <summary>Model events received so far (completed on receipt), in order.</summary>
    public List<CloudEvent> Events { get; } = [];

    public async Task<CloudEvent> WaitForEventAsync(string type, Func<CloudEvent, bool>? match = null, int seconds = 120)
    {
        var entity = Entities.Subscription(Entities.ModelEvents, Subscriber);
        return await Until(async () =>
        {
            foreach (var message in await Pipeline.Bus.ReceiveAsync(entity, 20))
            {
                await Pipeline.Bus.CompleteAsync(entity, message);
                Events.Add(CloudEvent.Parse(message.Body));
            }

            return Events.FirstOrDefault(e => e.Type == type && (match is null || match(e)));
        }, seconds, $"a {type} event");
    }

    public async Task<JobDocument> WaitForJobAsync(Func<JobDocument, bool> condition, string what, int seconds = 120) =>
        await Until(async () =>
        {
            await foreach (var job in Pipeline.Runtime.Jobs.ListAsync())
            {
                if (condition(job))
                {
                    return job;
                }
            }

            return null;
        }, seconds, what);

    public async Task<List<JobDocument>> JobsAsync()
    {
        var jobs = new List<JobDocument>();
        await foreach (var job in Pipeline.Runtime.Jobs.ListAsync())
        {
            jobs.Add(job);
        }

        return jobs;
    }

    /// <summary>Polls <paramref name="probe"/> until it returns something, failing after a deadline (no fixed sleeps).</summary>
    public async Task<T> Until<T>(Func<Task<T?>> probe, int seconds, string what) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (_running is { IsFaulted: true })
            {
                await _running;
            }

            if (await probe() is { } found)
            {
                return found;
            }

            if (DateTime.UtcNow > deadline)
            {
                var jobs = string.Join("\n", (await JobsAsync()).Select(j => $"{j.JobId} {j.State} {j.Error}"));
                throw new TimeoutException($"Waited {seconds} s for {what}. Jobs:\n{jobs}");
            }

            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_running is not null)
        {
            try
            {
                await _running;
            }
            catch (OperationCanceledException)
            {
            }
        }

        Pipeline.Dispose();
        _stop.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

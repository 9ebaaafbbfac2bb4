using System.Text;
using System.Text.Json.Nodes;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Resilience;

namespace Serverless.Reliability.Tests.Harness;

/// <summary>
/// A pipeline home (folder store + SQLite broker + trainers as child processes) and the `tune up` host running on it,
/// which a scenario can crash and start again on the same folder, as a user restarting a killed host would.
/// </summary>
internal sealed class Cluster : IAsyncDisposable
{
    public const string BaseModel = "tiny-base";
    public const string Subscriber = "reliability";

    /// <summary>Short locks, so a message held by a crashed host comes back within seconds.</summary>
    public static readonly EntityOptions Entities = new() { LockDuration = TimeSpan.FromSeconds(3), MaxDeliveryCount = 5 };

    private Host? _host;

    public Cluster(string? home = null)
    {
        Home = home ?? Path.Combine(Path.GetTempPath(), "reliability-" + Guid.NewGuid().ToString("N"));
        TinyModel.Save(Path.Combine(Home, Containers.BaseModels, BaseModel));
    }

    public string Home { get; }

    /// <summary>The running host.</summary>
    public EmbeddedPipeline Pipeline => (_host ?? throw new InvalidOperationException("not started")).Pipeline;

    /// <summary>Model events received (completed on receipt), duplicates included, in order.</summary>
    public List<CloudEvent> Events { get; } = [];

    /// <summary>Faults injected and retries taken, summed over every host started.</summary>
    public long FaultsInjected { get; private set; }

    public long Retries { get; private set; }

    /// <summary>Starts a host (stopping the previous one, if any, as a crash: nothing settled, trainers left running).</summary>
    public async Task StartAsync(int maxConcurrentJobs = 1, ChaosOptions? chaos = null, Func<(IBlobStore Blobs, IMessageBus Bus), (IBlobStore Blobs, IMessageBus Bus)>? decorate = null,
        IReadOnlyDictionary<string, string>? trainerVariables = null, Func<PipelineOptions, PipelineOptions>? configure = null)
    {
        await StopAsync(crashed: true);
        configure ??= o => o;
        var pipeline = new EmbeddedPipeline(Home, maxConcurrentJobs, chaos: chaos, decorate: decorate,
            configure: o => configure(o with { Entities = Entities, StartTimeout = TimeSpan.FromSeconds(10), RetryBackoff = TimeSpan.FromMilliseconds(500), MaxRetryBackoff = TimeSpan.FromSeconds(4), DispatchRetryDelay = TimeSpan.FromSeconds(1),
                WatchInterval = TimeSpan.FromSeconds(1), HeartbeatTimeout = TimeSpan.FromSeconds(15), WaitBackoff = TimeSpan.FromSeconds(1), MaxWaitBackoff = TimeSpan.FromSeconds(2) }),
            trainerVariables: trainerVariables);
        await pipeline.Runtime.Bus.EnsureTopologyAsync(Entities);
        await pipeline.Bus.EnsureSubscriptionAsync(Serverless.Core.Naming.Entities.ModelEvents, Subscriber, SubscriptionFilter.All, Entities);
        var stop = new CancellationTokenSource();
        _host = new Host(pipeline, stop, pipeline.RunAsync(stop.Token));
    }

    /// <summary>
    /// Stops the host. A crashed host is abandoned as a killed process would be: its trainers keep running (as child
    /// processes of a SIGKILLed parent do) and whatever it held stays locked until the lock expires.
    /// </summary>
    public async Task StopAsync(bool crashed = false)
    {
        if (_host is not { } host)
        {
            return;
        }

        _host = null;
        FaultsInjected += host.Pipeline.Counters.FaultsInjected;
        Retries += host.Pipeline.Counters.Retries;
        await host.Stop.CancelAsync();
        try
        {
            await host.Running;
        }
        catch (Exception) when (crashed)
        {
        }
        catch (OperationCanceledException)
        {
        }

        if (!crashed)
        {
            host.Pipeline.Dispose();
        }
        else
        {
            host.Pipeline.Watcher.Dispose();   // the dispatcher is left alone: its trainers outlive the host
        }

        host.Stop.Dispose();
    }

    public static JsonObject Spec(int steps = 6, int checkpointEvery = 3, int maxAttempts = 5, double debounceSeconds = 0.2) => new()
    {
        ["baseModel"] = BaseModel,
        ["debounceSeconds"] = debounceSeconds,
        ["maxAttempts"] = maxAttempts,
        ["gate"] = new JsonObject { ["minImprovementOverBase"] = -1, ["mustBeatChampion"] = false },
        ["steps"] = steps,
        ["batchSize"] = 4,
        ["blockSize"] = 16,
        ["warmupSteps"] = 1,
        ["learningRate"] = 3e-3,
        ["evalEvery"] = 3,
        ["evalTokens"] = 300,
        ["checkpointEvery"] = checkpointEvery,
        ["earlyStoppingPatience"] = 0,
        ["sampleTokens"] = 0,
    };

    public static string Corpus(int documents, string flavour = "") =>
        string.Concat(Enumerable.Range(0, documents).Select(i => $"{{\"text\": \"Document {i}{flavour}: the quick brown fox jumps over the lazy dog {i % 5} times.\"}}\n"));

    /// <summary>Writes straight into the folder (as a user dropping a file would), not through the host's ports.</summary>
    public Task WriteAsync(string container, string name, string text) =>
        new Serverless.Embedded.Blobs.FolderBlobStore(Home).WriteAsync(container, name, new MemoryStream(Encoding.UTF8.GetBytes(text)));

    public async Task DropAsync(string model, string file, string text, JsonObject? spec = null)
    {
        if (spec is not null)
        {
            await WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", spec.ToJsonString());
        }

        await WriteAsync(Containers.Datasets, $"{model}/{file}", text);
    }

    public async Task<List<JobDocument>> JobsAsync()
    {
        var jobs = new List<JobDocument>();
        await foreach (var job in new JobStore(new Serverless.Embedded.Blobs.FolderBlobStore(Home)).ListAsync())
        {
            jobs.Add(job);
        }

        return jobs;
    }

    /// <summary>Messages waiting or locked anywhere but in this harness's own model-events subscription.</summary>
    public int PendingMessages()
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(Home, "bus.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM messages WHERE dead_lettered = 0 AND entity <> $e";
        command.Parameters.AddWithValue("$e", Serverless.Core.Naming.Entities.Subscription(Serverless.Core.Naming.Entities.ModelEvents, Subscriber));
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Receives model events into <see cref="Events"/>.</summary>
    public async Task CollectEventsAsync()
    {
        var bus = new Serverless.Embedded.Messaging.SqliteMessageBus(Path.Combine(Home, "bus.db"));
        var entity = Serverless.Core.Naming.Entities.Subscription(Serverless.Core.Naming.Entities.ModelEvents, Subscriber);
        while (await bus.ReceiveAsync(entity, 50) is { Count: > 0 } messages)
        {
            foreach (var message in messages)
            {
                await bus.CompleteAsync(entity, message);
                Events.Add(CloudEvent.Parse(message.Body));
            }
        }
    }

    /// <summary>Waits until every job is terminal and <paramref name="done"/> holds (no fixed sleeps); fails after the deadline.</summary>
    public async Task<List<JobDocument>> SettleAsync(int expectedJobs, int seconds = 240, Func<List<JobDocument>, bool>? done = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (_host is { Running.IsFaulted: true } host)
            {
                await host.Running;
            }

            await CollectEventsAsync();
            var jobs = await JobsAsync();
            if (jobs.Count >= expectedJobs && jobs.All(j => JobStates.IsTerminal(j.State)) && (done?.Invoke(jobs) ?? true))
            {
                return jobs;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Waited {seconds} s for {expectedJobs} terminal jobs. Jobs:\n" +
                    string.Join("\n", jobs.Select(j => $"{j.JobId} {j.State} attempts {j.Attempts} {j.Error}")));
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Polls until <paramref name="probe"/> returns something.</summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T?>> probe, int seconds, string what) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (await probe() is { } found)
            {
                return found;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Waited {seconds} s for {what}.");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed record Host(EmbeddedPipeline Pipeline, CancellationTokenSource Stop, Task Running);
}

using System.Text.Json.Nodes;
using Azure;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Messaging;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;

namespace Serverless.Cli.Tests.Pipeline;

public sealed class PipelineRuntimeTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "runtime-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_home))
        {
            Directory.Delete(_home, recursive: true);
        }
    }

    private static JobDocument Job(string id, JobState state = JobState.Preparing) => new()
    {
        JobId = id, Model = "m", Trigger = "upload", TriggerKey = id, Spec = [], Dataset = [], DatasetHash = "h", CreatedAt = DateTimeOffset.UtcNow, State = state,
    };

    /// <summary>Counts document reads, to show what a listing costs.</summary>
    private sealed class CountingBlobs(IBlobStore inner) : IBlobStore
    {
        public int Reads;

        public Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default) => inner.GetAsync(container, name, cancellationToken);

        public Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Reads);
            return inner.OpenReadAsync(container, name, cancellationToken);
        }

        public Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(container, name, content, condition, cancellationToken);

        public IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", CancellationToken cancellationToken = default) => inner.ListAsync(container, prefix, cancellationToken);

        public Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default) =>
            inner.DeleteAsync(container, name, condition, cancellationToken);
    }

    [Fact]
    public async Task ListActive_ReadsTheLiveJobsOnly_NotTheHistory()
    {
        var blobs = new CountingBlobs(new FolderBlobStore(_home));
        var jobs = new JobStore(blobs);
        for (var i = 0; i < 40; i++)
        {
            await jobs.TryCreateAsync(Job($"done-{i}"));
            await jobs.UpdateAsync($"done-{i}", j => j.MoveTo(JobState.Failed, DateTimeOffset.UtcNow, "test"));
        }

        await jobs.TryCreateAsync(Job("live-1"));
        await jobs.TryCreateAsync(Job("live-2"));
        await jobs.UpdateAsync("live-2", j => j.MoveTo(JobState.Dispatched, DateTimeOffset.UtcNow, "test"));
        await jobs.ListActiveAsync().ToListAsync();   // the first listing indexes nothing new (every job was created with the index)

        blobs.Reads = 0;
        (await jobs.ListActiveAsync().Select(j => j.JobId).OrderBy(j => j).ToListAsync()).ShouldBe(["live-1", "live-2"]);
        blobs.Reads.ShouldBe(2, "one read per live job, whatever the history");
        (await jobs.ListAsync().CountAsync()).ShouldBe(42, "the full listing still sees every job document");
    }

    [Fact]
    public async Task ListActive_IndexesJobsCreatedBeforeTheIndex_Once()
    {
        var blobs = new FolderBlobStore(_home);
        // A job document written by an older version: no marker.
        await blobs.WriteAsync(Containers.Jobs, "old-live.json", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(
            System.Text.Json.JsonSerializer.Serialize(Job("old-live", JobState.Running), CloudEvent.JsonOptions))));

        (await new JobStore(blobs).ListActiveAsync().Select(j => j.JobId).ToListAsync()).ShouldBe(["old-live"]);
        (await blobs.GetAsync(Containers.Jobs, "active/old-live")).ShouldNotBeNull();
    }

    [Fact]
    public async Task ListNewest_ReadsOnlyThePageAskedFor_NewestFirst_OneModelToo()
    {
        var blobs = new CountingBlobs(new FolderBlobStore(_home));
        var jobs = new JobStore(blobs);
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var i = 0; i < 60; i++)
        {
            await jobs.TryCreateAsync(Job($"{(i % 2 == 0 ? "even" : "odd")}-{i:D3}") with { Model = i % 2 == 0 ? "even" : "odd", CreatedAt = start.AddMinutes(i) });
        }

        await jobs.ListNewestAsync().FirstAsync();   // builds nothing: every job was created with the index
        blobs.Reads = 0;
        (await jobs.ListNewestAsync().Take(5).Select(j => j.JobId).ToListAsync()).ShouldBe(["odd-059", "even-058", "odd-057", "even-056", "odd-055"]);
        blobs.Reads.ShouldBe(5, "five documents for five jobs, whatever the history");
        (await jobs.ListNewestAsync("even").Take(2).Select(j => j.JobId).ToListAsync()).ShouldBe(["even-058", "even-056"]);

        // A creator that lost the race to create the same job (another time) leaves a marker that lists nothing.
        (await jobs.TryCreateAsync(Job("odd-059") with { Model = "odd", CreatedAt = start.AddDays(1) })).ShouldBeFalse();
        (await jobs.ListNewestAsync().Select(j => j.JobId).ToListAsync()).Count(id => id == "odd-059").ShouldBe(1);
        (await jobs.ListNewestAsync().CountAsync()).ShouldBe(60);
    }

    [Fact]
    public async Task ListNewest_IndexesJobsCreatedBeforeTheIndex_Once()
    {
        var blobs = new FolderBlobStore(_home);
        foreach (var (id, minutes) in new[] { ("old-a", 1), ("old-b", 2) })
        {
            await blobs.WriteAsync(Containers.Jobs, $"{id}.json", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(
                Job(id, JobState.Published) with { CreatedAt = new DateTimeOffset(2025, 1, 1, 0, minutes, 0, TimeSpan.Zero) }, CloudEvent.JsonOptions))));
        }

        (await new JobStore(blobs).ListNewestAsync().Select(j => j.JobId).ToListAsync()).ShouldBe(["old-b", "old-a"]);
        (await blobs.GetAsync(Containers.Jobs, "recent/.indexed")).ShouldNotBeNull();
    }

    /// <summary>A dispatcher whose status calls fail past any retry a few times (as ARM or storage can), then answer.</summary>
    private sealed class FailingDispatcher(int failures) : IJobDispatcher
    {
        public int StatusCalls;

        public Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default) => Task.FromResult("e1");

        public Task CancelAsync(string execution, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref StatusCalls) <= failures
                ? throw new RequestFailedException(503, "ServerBusy: the service is busy past the client's retries")
                : Task.FromResult(ExecutionStatus.Failed);

        public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => Task.FromResult(0);
    }

    [Fact]
    public async Task TrainerWatch_KeepsRunningThroughFailuresPastTheRetries_ThenReportsTheLostRun()
    {
        var blobs = new FolderBlobStore(_home);
        var bus = new SqliteMessageBus(Path.Combine(_home, "bus.db"));
        var dispatcher = new FailingDispatcher(failures: 3);
        var runtime = new PipelineRuntime(blobs, bus, dispatcher, TimeProvider.System,
            new PipelineOptions { WorkDirectory = Path.Combine(_home, "work"), WatchInterval = TimeSpan.FromMilliseconds(20) });
        await runtime.Bus.EnsureTopologyAsync();
        var now = DateTimeOffset.UtcNow;
        await runtime.Jobs.TryCreateAsync(Job("lost").MoveTo(JobState.Dispatched, now, "test").MoveTo(JobState.Running, now, "test") with { Execution = "e1", Attempts = 1 });
        using var stop = new CancellationTokenSource();

        var watch = runtime.Watch.RunAsync(stop.Token);
        var received = new List<ReceivedMessage>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.Count == 0 && DateTime.UtcNow < deadline && !watch.IsCompleted)
        {
            received.AddRange(await bus.ReceiveAsync(StageEntities.Publish.Entity, 1));
            await Task.Delay(20);
        }

        watch.IsCompleted.ShouldBeFalse($"the watch survived the failures ({watch.Exception?.InnerException?.Message})");
        dispatcher.StatusCalls.ShouldBeGreaterThan(3);
        var failed = CloudEvent.Parse(received.Single().Body).DataAs<TrainingFailed>();
        (failed.JobId, failed.Retryable).ShouldBe(("lost", true));
        await stop.CancelAsync();
        await watch;   // ends quietly when the host stops
    }

    [Theory]
    [InlineData(0, "MaxConcurrentJobs")]
    [InlineData(-1, "MaxConcurrentJobs")]
    public void Options_ThatCannotWork_AreRefusedAtStart_NamingTheSetting(int slots, string named)
    {
        var options = new PipelineOptions { WorkDirectory = _home, MaxConcurrentJobs = slots };
        Should.Throw<ArgumentException>(() => new PipelineRuntime(new FolderBlobStore(_home), new SqliteMessageBus(Path.Combine(_home, "bus.db")), new FailingDispatcher(0), TimeProvider.System, options))
            .Message.ShouldContain(named);
        Should.Throw<ArgumentException>(() => (options with { MaxConcurrentJobs = 1, WatchInterval = TimeSpan.Zero }).Validate()).Message.ShouldContain("WatchInterval");
    }

    [Fact]
    public void TuneUp_WithNoTrainerSlot_IsRefused_WithAMessage()
    {
        var result = CliFixture.Run("up", "--home", _home, "--max-concurrent-jobs", "0");
        result.ExitCode.ShouldNotBe(0);
        (result.Output + result.Error).ShouldContain("--max-concurrent-jobs must be at least 1");
    }

    [Fact]
    public void StageEntities_AreTheOneTable_TheTopologyAndHostsUse()
    {
        StageEntities.All.Select(s => s.Entity).ShouldBe([
            Entities.FineTuneRequests,
            Entities.Subscription(Entities.TrainingEvents, Entities.PublisherSubscription),
            Entities.Subscription(Entities.TrainingEvents, Entities.StatusSubscription)]);
        StageEntities.All.Select(s => s.Tracing.Name).ShouldBe(["Serverless.Pipeline.Prepare", "Serverless.Pipeline.Publish", "Serverless.Pipeline.JobStatus"]);
    }
}

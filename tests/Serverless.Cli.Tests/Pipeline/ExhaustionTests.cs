using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Messaging;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;

namespace Serverless.Cli.Tests.Pipeline;

/// <summary>When the environment runs out: jobs wait (no attempt spent), resume, can be retried on request, and old files are swept.</summary>
public sealed class ExhaustionTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "exhaustion-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_home))
        {
            Directory.Delete(_home, recursive: true);
        }
    }

    /// <summary>A dispatcher as ARM behaves when it has no capacity: "not now" answers first, then runs that may stay pending.</summary>
    private sealed class ScriptedDispatcher : IJobDispatcher
    {
        public Queue<TimeSpan?> Refusals { get; } = new();

        public List<string> Started { get; } = [];

        public ExecutionStatus Status { get; set; } = ExecutionStatus.Running;

        public Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default)
        {
            if (Refusals.TryDequeue(out var retryAfter))
            {
                throw new EnvironmentUnavailableException("throttled (429)", retryAfter);
            }

            Started.Add($"{jobId}-{attempt}");
            return Task.FromResult($"{jobId}-{attempt}");
        }

        public Task CancelAsync(string execution, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) => Task.FromResult(Status);

        public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => Task.FromResult(0);
    }

    private (PipelineRuntime Runtime, SqliteMessageBus Bus, ScriptedDispatcher Dispatcher) Start(Func<PipelineOptions, PipelineOptions>? configure = null)
    {
        var blobs = new FolderBlobStore(_home);
        var bus = new SqliteMessageBus(Path.Combine(_home, "bus.db"), _clock);
        var dispatcher = new ScriptedDispatcher();
        var options = new PipelineOptions
        {
            WorkDirectory = Path.Combine(_home, "work"), WaitBackoff = TimeSpan.FromSeconds(30), MaxWaitBackoff = TimeSpan.FromMinutes(4),
            WaitHorizon = TimeSpan.FromHours(1), PendingNotice = TimeSpan.FromMinutes(5), Retention = TimeSpan.FromDays(7),
        };
        return (new PipelineRuntime(blobs, bus, dispatcher, _clock, configure?.Invoke(options) ?? options), bus, dispatcher);
    }

    private JobDocument Job(string id) => new()
    {
        JobId = id, Model = "m", Trigger = "upload", TriggerKey = id, Spec = [], Dataset = [], DatasetHash = "h", CreatedAt = _clock.GetUtcNow(),
        History = [new JobTransition(JobState.Preparing, _clock.GetUtcNow(), "test")],
    };

    private async Task<JobDocument> Running(PipelineRuntime runtime, string id, int attempts = 1)
    {
        var now = _clock.GetUtcNow();
        var job = Job(id).MoveTo(JobState.Dispatched, now, "test").MoveTo(JobState.Running, now, "test") with { Execution = $"{id}-{attempts}", Attempts = attempts };
        await runtime.Jobs.TryCreateAsync(job);
        await runtime.Blobs.WriteAsync(Containers.Prepared, $"{id}/manifest.json", new MemoryStream("{}"u8.ToArray()));
        return job;
    }

    private static async Task<JobDocument> Get(PipelineRuntime runtime, string id) => (await runtime.Jobs.GetAsync(id))!.Value.Job;

    private static async Task<List<CloudEvent>> Drain(SqliteMessageBus bus, string entity)
    {
        var events = new List<CloudEvent>();
        while (await bus.ReceiveAsync(entity, 50) is { Count: > 0 } messages)
        {
            foreach (var message in messages)
            {
                await bus.CompleteAsync(entity, message);
                events.Add(CloudEvent.Parse(message.Body));
            }
        }

        return events;
    }

    private static CloudEvent Failed(string id, string error, bool environmental, double? retryAfter = null) =>
        CloudEvent.Create(new TrainingFailed("m", id, error, Retryable: true, environmental, retryAfter), Guid.NewGuid().ToString("N"), "/test", DateTimeOffset.UtcNow);

    [Fact]
    public async Task EnvironmentalFailure_Waits_BacksOff_SpendsNoAttempt_AndFailsPastTheHorizon()
    {
        var (runtime, bus, _) = Start();
        await runtime.Bus.EnsureTopologyAsync();
        await bus.EnsureSubscriptionAsync(Entities.ModelEvents, "watcher", SubscriptionFilter.All);
        await Running(runtime, "disk");

        await runtime.Publish.HandleAsync(Failed("disk", "disk full: no space left on device for a checkpoint", environmental: true));
        var job = await Get(runtime, "disk");
        job.State.ShouldBe(JobState.Waiting);
        job.Crashes.ShouldBe(0, "waiting for the environment spends no crash attempt");
        job.Wait!.NextTryAt.ShouldBe(_clock.GetUtcNow() + TimeSpan.FromSeconds(30));
        job.Wait.Reason.ShouldContain("no space left");
        var waiting = (await Drain(bus, Entities.Subscription(Entities.ModelEvents, "watcher"))).Single();
        waiting.Type.ShouldBe(nameof(JobWaiting));
        waiting.DataAs<JobWaiting>().GiveUpAt.ShouldBe(_clock.GetUtcNow() + TimeSpan.FromHours(1));

        (await bus.ReceiveAsync(Entities.FineTuneRequests, 10)).ShouldBeEmpty("the next try is scheduled, not immediate");
        _clock.Advance(TimeSpan.FromSeconds(31));
        var retry = (await Drain(bus, Entities.FineTuneRequests)).Single().DataAs<FineTuneRequested>();
        retry.JobId.ShouldBe("disk");

        // The try runs (dispatch moves it on) and the environment is still full: the wait doubles.
        await runtime.Prepare.HandleAsync(retry);
        (await Get(runtime, "disk")).State.ShouldBe(JobState.Dispatched);
        await runtime.Jobs.UpdateAsync("disk", j => j.MoveTo(JobState.Running, _clock.GetUtcNow(), "test"));
        await runtime.Publish.HandleAsync(Failed("disk", "disk full again", environmental: true));
        job = await Get(runtime, "disk");
        (job.Wait!.NextTryAt - _clock.GetUtcNow()).ShouldBe(TimeSpan.FromSeconds(60));
        job.Wait.Tries.ShouldBe(2);
        job.Crashes.ShouldBe(0);

        // Past the horizon (an hour of waiting), the next environmental failure fails the job for good.
        _clock.Advance(TimeSpan.FromHours(1));
        await runtime.Prepare.HandleAsync(retry);
        await runtime.Jobs.UpdateAsync("disk", j => j.State == JobState.Dispatched ? j.MoveTo(JobState.Running, _clock.GetUtcNow(), "test") : null);
        await runtime.Publish.HandleAsync(Failed("disk", "disk full still", environmental: true));
        job = await Get(runtime, "disk");
        job.State.ShouldBe(JobState.Failed);
        job.Error!.ShouldContain("gave up after waiting");
        job.Error!.ShouldContain("tune retry disk");
    }

    [Fact]
    public async Task Crashes_StillCountAgainstMaxAttempts_AndAreNotWaits()
    {
        var (runtime, _, _) = Start();
        await runtime.Bus.EnsureTopologyAsync();
        await Running(runtime, "crash");
        await runtime.Publish.HandleAsync(Failed("crash", "the trainer exited with code 139", environmental: false));
        var job = await Get(runtime, "crash");
        job.State.ShouldBe(JobState.Dispatched);
        job.Crashes.ShouldBe(1);
        job.Wait.ShouldBeNull();
    }

    [Fact]
    public async Task NoCapacityToStartATrainer_TheJobWaitsWhatArmSaid_ThenStartsExactlyOneRun()
    {
        var (runtime, bus, dispatcher) = Start();
        await runtime.Bus.EnsureTopologyAsync();
        var job = Job("busy") with { };
        await runtime.Jobs.TryCreateAsync(job);
        dispatcher.Refusals.Enqueue(TimeSpan.FromSeconds(45));

        (await runtime.Dispatch.TryDispatchAsync("busy")).ShouldBeFalse();
        var waiting = await Get(runtime, "busy");
        waiting.State.ShouldBe(JobState.Waiting);
        waiting.Execution.ShouldBeNull("the claim is released while it waits");
        waiting.Wait!.NextTryAt.ShouldBe(_clock.GetUtcNow() + TimeSpan.FromSeconds(45), "Retry-After wins over the backoff");
        dispatcher.Started.ShouldBeEmpty();

        _clock.Advance(TimeSpan.FromSeconds(46));
        var retry = (await Drain(bus, Entities.FineTuneRequests)).Single().DataAs<FineTuneRequested>();
        await runtime.Prepare.HandleAsync(retry);
        await runtime.Prepare.HandleAsync(retry);   // redelivered
        var started = await Get(runtime, "busy");
        started.State.ShouldBe(JobState.Dispatched);
        started.Execution.ShouldBe("busy-2");
        dispatcher.Started.ShouldBe(["busy-2"], "one run, however often the request comes");
    }

    [Fact]
    public async Task ARunThatStaysPending_ShowsAsWaiting_AndTheJobRunsWhenItStarts_WithoutASecondRun()
    {
        var (runtime, _, dispatcher) = Start();
        await runtime.Bus.EnsureTopologyAsync();
        await runtime.Jobs.TryCreateAsync(Job("pending"));
        (await runtime.Dispatch.TryDispatchAsync("pending")).ShouldBeTrue();
        dispatcher.Status = ExecutionStatus.Running;   // ARM lists it; its trainer never reports running

        (await runtime.Watch.WatchAsync()).ShouldBeEmpty("not yet past the pending notice");
        _clock.Advance(TimeSpan.FromMinutes(6));
        (await runtime.Watch.WatchAsync()).ShouldBe(["pending"]);
        var job = await Get(runtime, "pending");
        job.State.ShouldBe(JobState.Waiting);
        job.Execution.ShouldBe("pending-1", "the pending run is kept");
        job.Wait!.NextTryAt.ShouldBeNull("it waits for that run, not for a new one");
        (await runtime.Api.RetryAsync("pending")).Status.ShouldBe(System.Net.HttpStatusCode.Conflict, "a retry would start a second run beside the pending one");

        await runtime.Status.HandleAsync(CloudEvent.Create(new TrainingStarted("m", "pending", 1, null), "s1", "/test", _clock.GetUtcNow()));
        (await Get(runtime, "pending")).State.ShouldBe(JobState.Running);
        dispatcher.Started.ShouldBe(["pending-1"]);
    }

    [Fact]
    public async Task RetryOnRequest_FailedCancelledAndWaitingJobs_TwiceAtOnceStartsOneRun()
    {
        var (runtime, bus, _) = Start();
        await runtime.Bus.EnsureTopologyAsync();
        var now = _clock.GetUtcNow();
        await Running(runtime, "failed");
        await runtime.Jobs.UpdateAsync("failed", j => j.MoveTo(JobState.Failed, now, "out of attempts") with { Crashes = 3, Execution = null, Error = "boom" });
        await Running(runtime, "cancelled");
        await runtime.Jobs.UpdateAsync("cancelled", j => j.MoveTo(JobState.Cancelled, now, "cancelled") with { CancelRequested = true, Execution = null });
        await Running(runtime, "waiting");
        await runtime.Publish.HandleAsync(Failed("waiting", "disk full", environmental: true));
        await Drain(bus, Entities.FineTuneRequests);

        var answers = await Task.WhenAll(runtime.Api.RetryAsync("failed"), runtime.Api.RetryAsync("failed"));
        answers.ShouldAllBe(a => a.Status == System.Net.HttpStatusCode.Accepted, "a retry is idempotent: the second finds it already retried");
        var failed = await Get(runtime, "failed");
        failed.State.ShouldBe(JobState.Dispatched);
        failed.Crashes.ShouldBe(0, "a fresh attempt budget");
        failed.History.Count(t => t.Note?.StartsWith("retried on request", StringComparison.Ordinal) == true).ShouldBe(1);
        (await runtime.Api.RetryAsync("cancelled")).Status.ShouldBe(System.Net.HttpStatusCode.Accepted);
        (await Get(runtime, "cancelled")).CancelRequested.ShouldBeFalse();
        (await runtime.Api.RetryAsync("waiting")).Status.ShouldBe(System.Net.HttpStatusCode.Accepted);
        (await Get(runtime, "waiting")).State.ShouldBe(JobState.Dispatched);

        var requests = (await Drain(bus, Entities.FineTuneRequests)).Select(e => e.DataAs<FineTuneRequested>().JobId!).ToList();
        requests.Order().ToList().ShouldBe(new List<string> { "cancelled", "failed", "waiting" }, customMessage: "one request per job: the second retry of 'failed' sent nothing new");
        (await runtime.Api.RetryAsync("failed")).Status.ShouldBe(System.Net.HttpStatusCode.Accepted, "still dispatched by the same retry");
        (await runtime.Api.RetryAsync("nope")).Status.ShouldBe(System.Net.HttpStatusCode.NotFound);

        await runtime.Jobs.TryCreateAsync(Job("bad-data").MoveTo(JobState.Failed, now, "dataset rejected") with
        {
            DatasetErrors = [new DatasetProblem("m/a.jsonl", 3, "text", "must be a string")], Error = "1 error",
        });
        var refused = await runtime.Api.RetryAsync("bad-data");
        refused.Status.ShouldBe(System.Net.HttpStatusCode.Conflict);
        refused.Body["error"]!.GetValue<string>().ShouldContain("fix the data");
    }

    [Fact]
    public async Task Retention_RemovesOldFinishedJobsFiles_NeverTheRegistryOrALiveJob()
    {
        var (runtime, _, _) = Start();
        var blobs = runtime.Blobs;
        async Task Files(string id)
        {
            await blobs.WriteAsync(Containers.Prepared, $"{id}/train.bin", new MemoryStream(new byte[1000]));
            await blobs.WriteAsync(Containers.Checkpoints, $"{id}/candidate/step-00000010/model.safetensors", new MemoryStream(new byte[5000]));
        }

        var old = _clock.GetUtcNow();
        await runtime.Jobs.TryCreateAsync(Job("old").MoveTo(JobState.Dispatched, old).MoveTo(JobState.Running, old).MoveTo(JobState.Completed, old).MoveTo(JobState.Published, old) with { Version = 1 });
        await runtime.Jobs.TryCreateAsync(Job("live").MoveTo(JobState.Dispatched, old).MoveTo(JobState.Running, old));
        await Files("old");
        await Files("live");
        await blobs.WriteAsync(Containers.Registry, "m/1/model.safetensors", new MemoryStream(new byte[5000]));
        _clock.Advance(TimeSpan.FromDays(8));
        await runtime.Jobs.TryCreateAsync(Job("recent").MoveTo(JobState.Failed, _clock.GetUtcNow(), "x"));
        await Files("recent");

        var result = await runtime.Retention.SweepAsync();
        result.Jobs.ShouldBe(1);
        result.Blobs.ShouldBe(2);
        result.Bytes.ShouldBe(6000);
        (await blobs.GetAsync(Containers.Prepared, "old/train.bin")).ShouldBeNull();
        (await blobs.GetAsync(Containers.Checkpoints, "old/candidate/step-00000010/model.safetensors")).ShouldBeNull();
        (await blobs.GetAsync(Containers.Registry, "m/1/model.safetensors")).ShouldNotBeNull("registry versions are never touched");
        (await blobs.GetAsync(Containers.Checkpoints, "live/candidate/step-00000010/model.safetensors")).ShouldNotBeNull("a live job is never touched");
        (await blobs.GetAsync(Containers.Prepared, "recent/train.bin")).ShouldNotBeNull("finished within the retention period");
        (await Get(runtime, "old")).Swept.ShouldBeTrue();
        (await blobs.GetAsync(Containers.Jobs, "unswept/old")).ShouldBeNull("a swept job leaves the retention index: later sweeps do not read it");
        (await blobs.GetAsync(Containers.Jobs, "unswept/recent")).ShouldNotBeNull();
        (await runtime.Retention.SweepAsync()).Jobs.ShouldBe(0, "a swept job is not listed again");
        (await runtime.Api.RetryAsync("recent")).Status.ShouldBe(System.Net.HttpStatusCode.Conflict, "never prepared: nothing to resume");
    }

    [Fact]
    public void Trainer_ClassifiesWhatTheEnvironmentRanOutOf_AndNothingElse()
    {
        static string? Of(Exception e) => Serverless.Trainer.Train.JobTrainer.Environmental(e);
        Of(new IOException("No space left on device : '/data/x'", 28))!.ShouldStartWith("disk full");
        Of(new Serverless.Model.Training.InsufficientDiskSpaceException("a checkpoint", "/x", 100, 10))!.ShouldStartWith("disk full");
        Of(new global::Azure.RequestFailedException(503, "The server is busy.", "ServerBusy", null))!.ShouldContain("storage busy (503 ServerBusy)");
        Of(new global::Azure.Messaging.ServiceBus.ServiceBusException("busy", global::Azure.Messaging.ServiceBus.ServiceBusFailureReason.ServiceBusy))!.ShouldContain("ServiceBusy");
#pragma warning disable CA2201 // the runtime's own exception, as the trainer would see it
        Of(new InvalidOperationException("wrapped", new OutOfMemoryException()))!.ShouldContain("out of memory");
#pragma warning restore CA2201
        Of(new EnvironmentUnavailableException("no capacity", TimeSpan.FromSeconds(5)))!.ShouldBe("no capacity");

        Of(new global::Azure.RequestFailedException(403, "AuthorizationPermissionMismatch")).ShouldBeNull("a missing role is not the environment running out");
        Of(new IOException("Permission denied", 13)).ShouldBeNull();
        Of(new Serverless.Model.Training.TrainingDivergedException(3, double.NaN, 1e-3, 1)).ShouldBeNull();
        Of(new InvalidOperationException("a bug")).ShouldBeNull();
    }
}

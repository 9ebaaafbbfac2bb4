using System.Diagnostics;
using System.Text.Json.Nodes;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Model.FineTuning;
using Serverless.Model.Gpt2;
using Serverless.Reliability.Tests.Harness;
using static TorchSharp.torch;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>
/// When the environment runs out — disk full, memory too small or exhausted — and when training itself diverges:
/// environmental failures wait and resume without spending attempts, deterministic ones fail at once, and
/// <c>tune retry</c> brings back what failed.
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class ExhaustionTests
{
    private static JobDocument Only(List<JobDocument> jobs) => jobs.Single();

    private static int TrainLoss(JobDocument job) => FineTuneReport.FromJson(job.Metrics!.ToJsonString()).CandidateTraining.TrainLoss.Count;

    [MachineFact(MachineNeed.Mount)]
    public async Task DiskFullMidTraining_TheJobWaits_ThenResumesWhenSpaceIsFreed_AndPublishesOnce()
    {
        var watch = Figures.Start();
        var mount = Path.Combine(Path.GetTempPath(), "reliability-disk-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(mount);
        // A real small file system (the test machine's own disk cannot be filled safely).
        Run("mount", $"-t tmpfs -o size=96m tmpfs {mount}").ShouldBeTrue("mounting a 96 MiB tmpfs");

        try
        {
            await using var cluster = new Cluster(Path.Combine(mount, "home"));
            await cluster.StartAsync();
            // Enough steps that, on a loaded machine, training cannot finish before the disk is filled (40 did, once, in the full suite).
            const int steps = 150;
            await cluster.DropAsync("full", "a.jsonl", Cluster.Corpus(40), Cluster.Spec(steps: steps, checkpointEvery: 2, maxAttempts: 1));
            // Once training has written a checkpoint, fill the disk so that only a few MiB stay free: the next checkpoint does not fit.
            var jobId = await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).FirstOrDefault(j => j.State == JobState.Running && j.Progress is { Step: >= 3 })?.JobId, 120, "a training job past its first checkpoint");
            var filler = Path.Combine(mount, "filler");
            var free = new DriveInfo(mount).AvailableFreeSpace;
            await using (var file = File.Create(filler))
            {
                file.SetLength(0);
                var chunk = new byte[1 << 20];
                for (long written = 0; written < free - (6L << 20); written += chunk.Length)
                {
                    file.Write(chunk);
                }
            }

            var waiting = await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).FirstOrDefault(j => j.State == JobState.Waiting), 120, "the job waiting for disk space");
            waiting.Wait!.Reason.ShouldContain("disk full");
            File.Delete(filler);

            var jobs = await cluster.SettleAsync(expectedJobs: 1, seconds: 240);
            var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
            var done = Only(jobs);
            Figures.Add(new Figure("disk full mid-training, then freed", 1, done.History.Count(t => t.State == JobState.Waiting), 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
                $"waited ({waiting.Wait.Reason.Split(':')[0]}) with maxAttempts 1, resumed, loss history once"));
            outcome.ShouldHold();
            done.State.ShouldBe(JobState.Published);
            done.Crashes.ShouldBe(0, "a full disk is not a crash: no attempt spent (maxAttempts is 1)");
            TrainLoss(done).ShouldBe(steps, "resumed from its last checkpoint: the loss history runs once from step 1 to the end");
            await cluster.StopAsync();
        }
        finally
        {
            Run("umount", $"-l {mount}");
            Directory.Delete(mount, recursive: true);
        }
    }

    [Fact]
    public async Task MemoryBelowTheEstimate_IsRefusedUpFront_WithTheNumbers_AndNotRetried()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync(trainerVariables: new Dictionary<string, string> { ["TUNE_MEMORY_LIMIT"] = "300MiB" });
        await cluster.DropAsync("small", "a.jsonl", Cluster.Corpus(20), Cluster.Spec());

        var jobs = await cluster.SettleAsync(expectedJobs: 1);
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 0);
        var job = Only(jobs);
        Figures.Add(new Figure("memory limit below the estimate", 1, 1, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed, "refused before training, 1 attempt"));
        outcome.ShouldHold();
        job.State.ShouldBe(JobState.Failed);
        job.Attempts.ShouldBe(1, "a job that cannot fit is refused, not retried");
        job.Error!.ShouldContain("memory: this job needs about");
        job.Error!.ShouldContain("the trainer may use 300 MiB");
        job.Error!.ShouldContain("lower batchSize");
    }

    [MachineFact(MachineNeed.MemoryCgroup)]
    public async Task TrainerKilledForMemory_IsReportedAsSuch_TheJobWaits_ThenPublishes()
    {
        var watch = Figures.Start();
        var group = Path.Combine(MachineFactAttribute.MemoryCgroups, "reliability-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(group);

        try
        {
            await using var cluster = new Cluster();
            await cluster.StartAsync();
            await cluster.DropAsync("oom", "a.jsonl", Cluster.Corpus(40), Cluster.Spec(steps: 400, checkpointEvery: 20, maxAttempts: 1));
            var (jobId, pid) = await Cluster.UntilAsync(async () =>
            {
                var job = (await cluster.JobsAsync()).SingleOrDefault(j => j.State == JobState.Running && j.Progress is { Step: >= 2 });
                return job is not null && cluster.Pipeline.Dispatcher.ProcessIds.TryGetValue(job.JobId, out var id) ? Tuple.Create(job.JobId, id) : null;
            }, 120, "a training trainer").ContinueWith(t => t.Result.ToValueTuple());

            // Move the trainer into a memory cgroup, let the dispatcher see it there, then hold the cgroup to what it
            // uses now: its next allocations exceed the limit and the kernel's OOM killer ends it.
            File.WriteAllText(Path.Combine(group, "memory.limit_in_bytes"), (4L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture));
            File.WriteAllText(Path.Combine(group, "cgroup.procs"), pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Task.Delay(2500);
            var usage = long.Parse(File.ReadAllText(Path.Combine(group, "memory.usage_in_bytes")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            File.WriteAllText(Path.Combine(group, "memory.limit_in_bytes"), (usage + (64L << 10)).ToString(System.Globalization.CultureInfo.InvariantCulture));

            var waiting = await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).FirstOrDefault(j => j.Wait is not null), 120, "the job waiting after the kill");
            var jobs = await cluster.SettleAsync(expectedJobs: 1, seconds: 300);
            var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
            var done = Only(jobs);
            Figures.Add(new Figure("trainer killed for memory (cgroup)", 1, 1, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
                $"reported: \"{waiting.Wait!.Reason}\""));
            outcome.ShouldHold();
            waiting.Wait.Reason.ShouldContain("killed for memory");
            waiting.Wait.Reason.ShouldContain("estimated");
            done.State.ShouldBe(JobState.Published);
            done.Crashes.ShouldBe(0, "killed for memory is the environment's doing: no attempt spent (maxAttempts is 1)");
            await cluster.StopAsync();
        }
        finally
        {
            for (var i = 0; i < 50 && Directory.Exists(group); i++)
            {
                try
                {
                    Directory.Delete(group);
                }
                catch (IOException)
                {
                    await Task.Delay(100);
                }
            }
        }
    }

    [Fact]
    public async Task NonFiniteLoss_FailsAtOnceWithTheStep_AndIsNotRetried()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        // A base whose final LayerNorm holds NaN: the very first training loss is NaN.
        using (var poisoned = Gpt2Model.FromPretrained(Path.Combine(cluster.Home, Containers.BaseModels, Cluster.BaseModel)))
        {
            using (no_grad())
            {
                poisoned.named_parameters().First(p => p.name.Contains("ln_f.weight", StringComparison.Ordinal)).parameter.fill_(double.NaN);
            }

            poisoned.SavePretrained(Path.Combine(cluster.Home, Containers.BaseModels, "nan-base"));
        }

        await cluster.StartAsync();
        var spec = Cluster.Spec(maxAttempts: 5);
        spec["baseModel"] = "nan-base";
        await cluster.DropAsync("nan", "a.jsonl", Cluster.Corpus(20), spec);

        var jobs = await cluster.SettleAsync(expectedJobs: 1);
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 0);
        var job = Only(jobs);
        Figures.Add(new Figure("NaN loss", 1, 1, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed, "failed at step 1, 1 attempt of 5"));
        outcome.ShouldHold();
        job.State.ShouldBe(JobState.Failed);
        job.Attempts.ShouldBe(1, "divergence is deterministic: never retried");
        job.Error!.ShouldContain("training diverged: the loss became NaN at step 1");
    }

    [Fact]
    public async Task RetryOnRequest_AFailedAndACancelledJob_EachResumeAndPublishOnce_TwoRetriesAtOnceStartOneRun()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        const int steps = 30;
        await cluster.DropAsync("again", "a.jsonl", Cluster.Corpus(30), Cluster.Spec(steps: steps, checkpointEvery: 3, maxAttempts: 1));
        // Out of attempts after one crash: the trainer killed mid-training.
        var (jobId, pid) = await Cluster.UntilAsync(async () =>
        {
            var job = (await cluster.JobsAsync()).SingleOrDefault(j => j.State == JobState.Running && j.Progress is { Step: >= 7 });
            return job is not null && cluster.Pipeline.Dispatcher.ProcessIds.TryGetValue(job.JobId, out var id) ? Tuple.Create(job.JobId, id) : null;
        }, 120, "a training trainer").ContinueWith(t => t.Result.ToValueTuple());
        Process.GetProcessById(pid).Kill();
        await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).FirstOrDefault(j => j.State == JobState.Failed), 60, "the job failed (out of attempts)");

        var answers = await Task.WhenAll(cluster.Pipeline.Runtime.Api.RetryAsync(jobId), cluster.Pipeline.Runtime.Api.RetryAsync(jobId));
        answers.ShouldAllBe(a => a.Status == System.Net.HttpStatusCode.Accepted);
        var jobs = await cluster.SettleAsync(expectedJobs: 1, seconds: 240);

        // A second model: cancelled while training, then retried.
        const int longer = 600;   // long enough to be cancelled while it trains
        await cluster.DropAsync("later", "a.jsonl", Cluster.Corpus(30, " later"), Cluster.Spec(steps: longer, checkpointEvery: 20));
        var cancelled = await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).FirstOrDefault(j => j.Model == "later" && j.State == JobState.Running && j.Progress is { Step: >= 4 }), 120, "the second job training");
        await cluster.Pipeline.Runtime.Api.CancelAsync(cancelled.JobId);
        await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).FirstOrDefault(j => j.JobId == cancelled.JobId && j.State == JobState.Cancelled), 60, "the second job cancelled");
        (await cluster.Pipeline.Runtime.Api.RetryAsync(cancelled.JobId)).Status.ShouldBe(System.Net.HttpStatusCode.Accepted);
        jobs = await cluster.SettleAsync(expectedJobs: 2, seconds: 240, done: js => js.All(j => j.State == JobState.Published));

        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 2, expectedVersions: 2);
        Figures.Add(new Figure("tune retry: failed, cancelled; two retries at once", 3, 2, 2, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            "each resumed from its checkpoint and published once"));
        outcome.ShouldHold();
        foreach (var job in jobs)
        {
            job.State.ShouldBe(JobState.Published);
            TrainLoss(job).ShouldBe(job.Model == "later" ? longer : steps, $"{job.JobId} resumed from its checkpoint: the loss history runs once from step 1 to the end");
        }

        var retried = jobs.Single(j => j.JobId == jobId);
        retried.Attempts.ShouldBe(2, "two retries at once started one run");
        retried.History.Count(t => t.Note?.StartsWith("retried on request", StringComparison.Ordinal) == true).ShouldBe(1);
    }

    [Fact]
    public async Task FiftyRetrainsOfOneModel_DiskUseStaysFlat_RegistryKeepsEveryVersion()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        // Retention as `tune up` runs it, with the period shortened: a finished job's files go at the next sweep.
        await cluster.StartAsync(configure: o => o with { Retention = TimeSpan.FromMilliseconds(1), RetentionInterval = TimeSpan.FromMilliseconds(500) });
        const int retrains = 50;
        await cluster.DropAsync("nightly", "a.jsonl", Cluster.Corpus(30), Cluster.Spec(steps: 6, checkpointEvery: 2));
        await cluster.SettleAsync(expectedJobs: 1);
        // The sweep marks a job swept before it deletes its files, so a reading can meet a file being deleted: count it
        // as gone, and take a sample only once two readings agree (the sweep has finished).
        long Used(string container) => Directory.Exists(Path.Combine(cluster.Home, container))
            ? Directory.EnumerateFiles(Path.Combine(cluster.Home, container), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f) is { Exists: true } file ? file.Length : 0) : 0;
        long Reading() => Used(Containers.Prepared) + Used(Containers.Checkpoints) + Used("work");
        async Task<long> Working()
        {
            var previous = -1L;
            return (await Cluster.UntilAsync(async () =>
            {
                var now = Reading();
                var stable = now == previous;
                previous = now;
                await Task.Delay(200);
                return stable ? (object?)now : null;
            }, 60, "disk use to settle after the sweep") as long?)!.Value;
        }
        var samples = new List<long>();
        for (var i = 1; i < retrains; i++)
        {
            // What a schedule occurrence sends: one request with the occurrence as its trigger key.
            await cluster.Pipeline.Runtime.Bus.RequestAsync(new Serverless.Core.Contracts.FineTuneRequested("nightly", "schedule", $"occurrence-{i}"), $"nightly-{i}");
            await cluster.SettleAsync(expectedJobs: i + 1, seconds: 120, done: js => js.All(j => j.Swept));
            samples.Add(await Working());
        }

        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: retrains, expectedVersions: retrains);
        var registry = Used(Containers.Registry);
        Figures.Add(new Figure("50 retrains of one model with retention", retrains, 0, retrains, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            $"shards + checkpoints + work after retrain 5: {samples[3]:N0} B, after 25: {samples[23]:N0} B, after 50: {samples[^1]:N0} B; registry {registry:N0} B for {retrains} versions (kept)"));
        outcome.ShouldHold();
        samples[^1].ShouldBeLessThanOrEqualTo(samples[3] + (64L << 10), "disk use for working files does not grow with history");
        Directory.GetDirectories(Path.Combine(cluster.Home, Containers.Registry, "nightly")).Length.ShouldBe(retrains, "every version kept");
    }

    [Fact]
    public async Task ArmSaysNotNow_ThenTheRunStaysPending_TheJobWaits_ThenRuns_WithOneExecution()
    {
        var watch = Figures.Start();
        var home = Path.Combine(Path.GetTempPath(), "reliability-arm-" + Guid.NewGuid().ToString("N"));
        TinyModel.Save(Path.Combine(home, Containers.BaseModels, Cluster.BaseModel));
        const string jobPath = "/subscriptions/sub-1/resourceGroups/rg-ml/providers/Microsoft.App/jobs/trainer";
        using var arm = new Serverless.Azure.Tests.Dispatch.FakeArm(jobPath)
        {
            JobTemplate = JsonNode.Parse("""{"containers": [{"name": "trainer", "image": "acr.azurecr.io/tune-trainer:1", "env": []}]}""")!.AsObject(),
        };
        // Four "not now" answers (429 and 409, each with Retry-After: 1): more than one dispatch's tries.
        foreach (var answer in Enumerable.Range(0, 4).Select(i => i % 2 == 0 ? Serverless.Azure.Tests.Dispatch.FakeArm.StartAnswer.ThrottledLong : Serverless.Azure.Tests.Dispatch.FakeArm.StartAnswer.Conflict))
        {
            arm.Starts.Enqueue(answer);
        }

        using var http = new HttpClient();
        var dispatcher = new Serverless.Azure.Dispatch.ContainerAppsJobDispatcher(http, new Serverless.Azure.Tests.Dispatch.FixedCredential("token"), new Serverless.Azure.Dispatch.ContainerAppsJobOptions
        {
            SubscriptionId = "sub-1", ResourceGroup = "rg-ml", JobName = "trainer", ArmEndpoint = arm.Endpoint,
            StartRetryDelay = TimeSpan.FromMilliseconds(20), StartOperationTimeout = TimeSpan.FromSeconds(5),
        }, Serverless.Azure.Dispatch.ContainerAppsJobDispatcher.DefaultResilience(TimeSpan.FromMilliseconds(10)));
        var blobs = new Serverless.Embedded.Blobs.FolderBlobStore(home);
        var runtime = new Serverless.Pipeline.Hosting.PipelineRuntime(blobs, new Serverless.Embedded.Messaging.SqliteMessageBus(Path.Combine(home, "bus.db")), dispatcher, TimeProvider.System,
            new Serverless.Pipeline.Messaging.PipelineOptions
            {
                WorkDirectory = Path.Combine(home, "work"), Entities = Cluster.Entities, WaitBackoff = TimeSpan.FromSeconds(1), MaxWaitBackoff = TimeSpan.FromSeconds(2),
                PendingNotice = TimeSpan.FromSeconds(2), WatchInterval = TimeSpan.FromMilliseconds(500),
            });
        await runtime.Bus.EnsureTopologyAsync(Cluster.Entities);
        await blobs.WriteAsync(Containers.Datasets, $"arm/{Containers.SpecFile}", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Cluster.Spec().ToJsonString())));
        await blobs.WriteAsync(Containers.Datasets, "arm/a.jsonl", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Cluster.Corpus(20))));
        using var stop = new CancellationTokenSource();
        var running = runtime.RunStagesAsync(TimeSpan.FromMilliseconds(50), stop.Token);
        try
        {
            await runtime.Bus.RequestAsync(new Serverless.Core.Contracts.FineTuneRequested("arm", "upload", "k1"), "arm-k1");
            async Task<JobDocument?> Job(Func<JobDocument, bool> when)
            {
                await foreach (var job in runtime.Jobs.ListAsync())
                {
                    if (when(job))
                    {
                        return job;
                    }
                }

                return null;
            }

            var notNow = await Cluster.UntilAsync(() => Job(j => j.State == JobState.Waiting && j.Execution is null), 60, "the job waiting for ARM");
            var pending = await Cluster.UntilAsync(() => Job(j => j.State == JobState.Waiting && j.Execution is not null), 60, "the job waiting for its pending run");
            // Capacity comes: the run's trainer starts and says so.
            await runtime.Bus.PublishAsync(Entities.TrainingEvents, new Serverless.Core.Contracts.TrainingStarted("arm", pending.JobId, pending.Attempts, null), "started-1", "/serverless/train");
            var ran = await Cluster.UntilAsync(() => Job(j => j.State == JobState.Running), 60, "the job running");

            var starts = arm.Requests.Count(r => r is { Method: "POST" } && r.Path.EndsWith("/start", StringComparison.Ordinal));
            Figures.Add(new Figure("ARM 429/409 with Retry-After, then a run that stays pending", 1, 4 + 1, 1, 1, arm.Executions.Count - 1, 0, watch.Elapsed,
                $"waited \"{notNow.Wait!.Reason.Split(" (")[0]}\", then for its pending run; {starts} start requests, {arm.Executions.Count} execution"));
            notNow.Wait.Reason.ShouldContain("would not start the trainer job");
            notNow.Crashes.ShouldBe(0);
            pending.Wait!.Reason.ShouldContain("has not started after");
            pending.Wait.NextTryAt.ShouldBeNull();
            arm.Executions.Count.ShouldBe(1, "waiting never started a second run");
            ran.Execution.ShouldBe(arm.Executions.Single().Name);
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await running;
            }
            catch (OperationCanceledException)
            {
            }

            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(home, recursive: true);
        }
    }

    private static bool Run(string file, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}

using System.Text;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>
/// `tune up` (the worker) killed while it holds a message, at the most awkward points of Prepare, Dispatch and Publish,
/// then started again on the same folder: every job completes exactly once, no version is doubled or orphaned, and the
/// event goes out (at least once, under one stable id).
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class HostCrashTests
{
    public static TheoryData<string> Points => [.. CrashPoints.Keys];

    private static readonly Dictionary<string, Func<CrashPoint>> CrashPoints = new()
    {
        ["prepare: shards uploaded, manifest not"] = () => new CrashPoint("prepare", onWrite: (c, n, _) => c == Containers.Prepared && n.EndsWith("/manifest.json", StringComparison.Ordinal)),
        ["prepare: newest-first marker written, job document not"] = () => new CrashPoint("prepare-index", onWrite: (c, n, _) => c == Containers.Jobs && n.StartsWith("recent/", StringComparison.Ordinal) && !n.EndsWith(".indexed", StringComparison.Ordinal), after: true),
        ["dispatch: trainer claimed, not started"] = () => new CrashPoint("dispatch", onWrite: (c, _, b) => c == Containers.Jobs && Text(b).Contains("\"execution\":\"starting@", StringComparison.Ordinal), after: true),
        ["publish: version claimed, files half-copied"] = () => new CrashPoint("publish-copy", onWrite: (c, n, _) => c == Containers.Registry && n.EndsWith("/model.safetensors", StringComparison.Ordinal)),
        ["publish: files copied, index not updated"] = () => new CrashPoint("publish-index", onWrite: (c, n, b) => c == Containers.Registry && n.EndsWith("/index.json", StringComparison.Ordinal) && Text(b).Contains("\"ready\"", StringComparison.Ordinal)),
        ["publish: index updated, event not sent"] = () => new CrashPoint("publish-event", onPublish: (t, m) => t == Entities.ModelEvents && m.Properties?[MessageProperties.Type] == nameof(ModelPublished)),
    };

    private static string Text(byte[]? bytes) => bytes is null ? "" : Encoding.UTF8.GetString(bytes).Replace(" ", "", StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(Points))]
    public async Task HostKilled_RestartedOnTheSameFolder_EachJobCompletesExactlyOnce(string point)
    {
        var watch = Figures.Start();
        var runs = Figures.Repeats;
        var outcomes = new List<Outcome>();
        for (var run = 0; run < runs; run++)
        {
            await using var cluster = new Cluster();
            var crash = CrashPoints[point]();
            await cluster.StartAsync(decorate: crash.Wrap);
            await cluster.DropAsync("crashy", "a.jsonl", Cluster.Corpus(40), Cluster.Spec());
            await Cluster.UntilAsync(() => Task.FromResult(crash.Fired ? "fired" : null), 120, $"the crash point '{point}'");
            await cluster.StartAsync();   // the killed host is abandoned; a new one starts on the same folder

            await cluster.SettleAsync(expectedJobs: 1, done: _ => cluster.Events.Any(e => e.Type == nameof(ModelPublished)));
            var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
            outcomes.Add(outcome);
            outcome.ShouldHold();
            (await cluster.JobsAsync()).Single().State.ShouldBe(JobState.Published);
        }

        Figures.Add(new Figure($"host killed — {point}", runs, runs, runs, outcomes.Sum(o => o.JobsCompleted), outcomes.Sum(o => o.Duplicates), outcomes.Sum(o => o.Lost), watch.Elapsed));
    }

    [Fact]
    public async Task HostStoppedWithCtrlC_WhileTraining_TheJobResumesWhenItStartsAgain()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.DropAsync("stopped", "a.jsonl", Cluster.Corpus(40), Cluster.Spec(steps: 200, checkpointEvery: 10));
        await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).SingleOrDefault(j => j.State == JobState.Running && j.Progress is not null), 120, "training to run");
        await cluster.StopAsync();    // a clean stop: the host stops its trainers
        await cluster.StartAsync();

        var jobs = await cluster.SettleAsync(expectedJobs: 1, done: _ => cluster.Events.Any(e => e.Type == nameof(ModelPublished)));
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
        Figures.Add(new Figure("host stopped (Ctrl+C) while training, started again", 1, 1, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed));
        outcome.ShouldHold();
        jobs.Single().Attempts.ShouldBe(2);
    }

    [Fact]
    public async Task HostAndItsTrainersKilledTogether_TheTrainerWatchOfTheNextHostRecoversTheJob()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        var machine = new CrashPoint("machine lost");
        await cluster.StartAsync(decorate: machine.Wrap);
        await cluster.DropAsync("lost", "a.jsonl", Cluster.Corpus(40), Cluster.Spec(steps: 300, checkpointEvery: 10));
        await Cluster.UntilAsync(async () => (await cluster.JobsAsync()).SingleOrDefault(j => j.State == JobState.Running && j.Progress is not null), 120, "training to run");
        var trainers = cluster.Pipeline.Dispatcher.ProcessIds.Values.ToList();
        machine.KillNow();                        // the machine is lost: the host without a word...
        await cluster.StopAsync(crashed: true);
        foreach (var pid in trainers)
        {
            System.Diagnostics.Process.GetProcessById(pid).Kill();   // ...and its trainers with it
        }

        await cluster.StartAsync();
        var jobs = await cluster.SettleAsync(expectedJobs: 1, done: _ => cluster.Events.Any(e => e.Type == nameof(ModelPublished)));
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
        Figures.Add(new Figure("host and trainers killed together (machine lost)", 1, 2, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            "the next host's trainer watch found the silent run"));
        outcome.ShouldHold();
        jobs.Single().History.ShouldContain(t => t.Note != null && t.Note.Contains("no sign of life", StringComparison.Ordinal));
    }
}

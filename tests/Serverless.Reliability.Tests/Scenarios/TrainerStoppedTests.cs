using System.Diagnostics;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>
/// What Container Apps does on scale-in, <c>replicaTimeout</c> or a stop request: SIGTERM to the trainer, then SIGKILL
/// after the termination grace period. The trainer must checkpoint, report a retryable stop and exit in time.
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class TrainerStoppedTests
{
    [Fact]
    public async Task Sigterm_CheckpointsReportsARetryableStopAndExits_ThenTheJobResumesFromThatCheckpoint()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        const int steps = 400;
        await cluster.DropAsync("sigterm", "a.jsonl", Cluster.Corpus(40), Cluster.Spec(steps: steps, checkpointEvery: 50, maxAttempts: 3));

        // A trainer past its first checkpoint, mid-way between two: SIGTERM must save the step it stopped at.
        var (jobId, pid) = await Cluster.UntilAsync(async () =>
        {
            var job = (await cluster.JobsAsync()).SingleOrDefault(j => j.State == JobState.Running && j.Progress is { Phase: "candidate", Step: > 60 });
            return job is not null && cluster.Pipeline.Dispatcher.ProcessIds.TryGetValue(job.JobId, out var id) ? Tuple.Create(job.JobId, id) : null;
        }, 120, "a running trainer past step 60").ContinueWith(t => t.Result.ToValueTuple());
        using var trainer = Process.GetProcessById(pid);
        var progressed = (await cluster.JobsAsync()).Single(j => j.JobId == jobId).Progress!.Step;   // reached before the signal
        using (var kill = Process.Start("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var stopped = Stopwatch.StartNew();
        await Task.WhenAny(trainer.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(30)));
        trainer.HasExited.ShouldBeTrue("the trainer exits well within Container Apps' 30 s grace period after SIGTERM");
        var exitedAfter = stopped.Elapsed;
        var pointer = await File.ReadAllTextAsync(Path.Combine(cluster.Home, Containers.Checkpoints, jobId, "candidate", "latest.json"));
        var savedStep = System.Text.Json.Nodes.JsonNode.Parse(pointer)!["step"]!.GetValue<int>();
        savedStep.ShouldBeGreaterThanOrEqualTo(progressed, "the checkpoint is the step SIGTERM stopped at, not an older periodic one");

        var jobs = await cluster.SettleAsync(expectedJobs: 1, seconds: 300);
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
        Figures.Add(new Figure("trainer SIGTERMed (Container Apps stop)", 1, 1, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            $"exited {exitedAfter.TotalSeconds:F1} s after SIGTERM with a checkpoint at step {savedStep}; resumed from it"));
        outcome.ShouldHold();
        var done = jobs.Single();
        done.State.ShouldBe(JobState.Published);
        done.Attempts.ShouldBe(2, "one retry, from the checkpoint, with the attempt the stop reported");
        done.History.ShouldContain(h => h.Note != null && h.Note.Contains("SIGTERM", StringComparison.Ordinal), "the stop is recorded as a retryable failure");
        var metrics = Serverless.Model.FineTuning.FineTuneReport.FromJson(done.Metrics!.ToJsonString());
        metrics.CandidateTraining.TrainLoss.Count.ShouldBe(steps, "the retry continued from the SIGTERM checkpoint: the loss history runs from step 1 to the end exactly once");
    }
}

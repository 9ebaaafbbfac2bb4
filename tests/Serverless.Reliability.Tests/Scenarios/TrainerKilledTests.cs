using System.Diagnostics;
using System.Text.Json.Nodes;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>Preempted GPU containers: the trainer SIGKILLed at random moments, several times per job.</summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class TrainerKilledTests
{
    [Fact]
    public async Task KilledAtRandomSteps_ResumesFromItsLastCheckpointEachTime_AndPublishesOnce()
    {
        var watch = Figures.Start();
        var kills = 4 * Figures.Repeats;
        var midCheckpoint = 0;
        var random = new Random(Figures.Seed(6));
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        // A checkpoint every step, so the trainer spends much of its time writing checkpoints and kills land inside writes.
        var steps = 60 + (30 * kills);
        await cluster.DropAsync("preempted", "a.jsonl", Cluster.Corpus(40), Cluster.Spec(steps: steps, checkpointEvery: 1, maxAttempts: kills + 2));
        var pointer = "";
        for (var kill = 0; kill < kills; kill++)
        {
            // Wait for a live trainer that has written a checkpoint since the last kill, then kill it after a random delay.
            var (jobId, pid) = await Cluster.UntilAsync(async () =>
            {
                var job = (await cluster.JobsAsync()).SingleOrDefault(j => j.State == JobState.Running);
                var latest = job is null ? null : Path.Combine(cluster.Home, Containers.Checkpoints, job.JobId, "candidate", "latest.json");
                return job is not null && cluster.Pipeline.Dispatcher.ProcessIds.TryGetValue(job.JobId, out var id)
                    && File.Exists(latest) && File.ReadAllText(latest!) != pointer ? Tuple.Create(job.JobId, id) : null;
            }, 120, "a running trainer with a new checkpoint").ContinueWith(t => t.Result.ToValueTuple());
            var checkpointsDir = Path.Combine(cluster.Home, Containers.Checkpoints, jobId, "candidate");
            if (kill % 2 == 1)
            {
                // Aim inside a checkpoint copy: a step folder whose state.json (copied last) is not there yet.
                await Cluster.UntilAsync(() => Task.FromResult(CopyInProgress(checkpointsDir)), 30, "a checkpoint being copied");
            }
            else
            {
                await Task.Delay(random.Next(0, 400));
            }

            Process.GetProcessById(pid).Kill();
            var checkpoints = Path.Combine(cluster.Home, Containers.Checkpoints, jobId, "candidate");
            pointer = File.ReadAllText(Path.Combine(checkpoints, "latest.json"));
            midCheckpoint += CountIncompleteCheckpoints(checkpoints, pointer);
        }

        var jobs = await cluster.SettleAsync(expectedJobs: 1, seconds: 300);
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
        Figures.Add(new Figure("trainer SIGKILLed at random steps", kills, kills, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            $"{midCheckpoint} kills left a checkpoint half-copied; every resume used a complete one"));
        outcome.ShouldHold();
        var done = jobs.Single();
        done.State.ShouldBe(JobState.Published);
        done.Attempts.ShouldBe(kills + 1);
        var metrics = Serverless.Model.FineTuning.FineTuneReport.FromJson(done.Metrics!.ToJsonString());
        metrics.CandidateTraining.TrainLoss.Count.ShouldBe(steps, "each resume continued from its checkpoint: the loss history runs from step 1 to the end exactly once");
    }

    /// <summary>A step folder newer than the one latest.json names whose state.json (copied last) is not there yet.</summary>
    private static string? CopyInProgress(string checkpoints)
    {
        var latest = Path.Combine(checkpoints, "latest.json");
        string current;
        try
        {
            current = StepOf(File.ReadAllText(latest));
        }
        catch (IOException)
        {
            return null;
        }

        return Directory.GetDirectories(checkpoints, "step-*")
            .FirstOrDefault(d => string.CompareOrdinal(Path.GetFileName(d), current) > 0 && !File.Exists(Path.Combine(d, "state.json")));
    }

    private static string StepOf(string pointer) =>
        Path.GetFileName((JsonNode.Parse(pointer)!["prefix"]?.GetValue<string>() ?? "").TrimEnd('/'));

    /// <summary>Step folders newer than the one latest.json names: copies cut short by the kill (or not yet pointed at).</summary>
    private static int CountIncompleteCheckpoints(string checkpoints, string pointer)
    {
        var current = StepOf(pointer);
        var complete = Directory.GetDirectories(checkpoints, "step-*").Select(d => Directory.GetFiles(d, "*", SearchOption.AllDirectories).Length).DefaultIfEmpty(0).Max();
        return Directory.GetDirectories(checkpoints, "step-*")
            .Count(d => string.CompareOrdinal(Path.GetFileName(d), current) > 0 && Directory.GetFiles(d, "*", SearchOption.AllDirectories).Length < complete);
    }
}

using System.Diagnostics;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>
/// The real thing, no simulation: `tune up` as its own process, SIGKILLed at random moments (three times) while two jobs go
/// through it, started again after each. Its trainers outlive it, as children of a killed process do; whatever it held comes back
/// when the lock (60 s, the default) expires.
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class TuneUpKilledTests
{
    private static Process StartTuneUp(string home)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "tune.exe" : "tune"))
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        // --port 0: the console on a free port, so a restarted `tune up` never waits for the killed one's port.
        foreach (var argument in new[] { "up", "--home", home, "--port", "0" })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    [Fact]
    public async Task TuneUpProcess_SigkilledAtRandomMoments_RestartedOnTheSameFolder_EachJobCompletesOnce()
    {
        var watch = Figures.Start();
        var random = new Random(Figures.Seed(7));
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.StopAsync();   // entities and the harness's subscription exist; the host from now on is `tune up`
        await cluster.DropAsync("real-a", "a.jsonl", Cluster.Corpus(40, " a"), Cluster.Spec(steps: 60, checkpointEvery: 5));
        await cluster.DropAsync("real-b", "a.jsonl", Cluster.Corpus(40, " b"), Cluster.Spec(steps: 60, checkpointEvery: 5));

        var kills = 3 * Figures.Repeats;
        var moments = new List<string>();
        for (var kill = 0; kill < kills; kill++)
        {
            var host = StartTuneUp(cluster.Home);
            var delay = random.Next(1_500, 6_000);
            await Task.Delay(delay);
            var states = string.Join(" + ", (await cluster.JobsAsync()).Select(j => $"{j.Model} {j.State.ToString().ToLowerInvariant()}"));
            host.Kill();                                  // SIGKILL: no cleanup, no settling, trainers left running
            await host.WaitForExitAsync();
            moments.Add($"{delay / 1000.0:F1} s ({(states.Length == 0 ? "no jobs yet" : states)})");
        }

        var second = StartTuneUp(cluster.Home);
        try
        {
            await cluster.SettleAsync(expectedJobs: 2, seconds: 300, done: jobs => jobs.Count(j => j.State == JobState.Published) == 2
                && cluster.Events.Count(e => e.Type == nameof(ModelPublished)) >= 2);
            // `tune up` locks messages for 60 s (the default): one a killed process held is redelivered only then.
            var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 2, expectedVersions: 2, quiesce: TimeSpan.FromSeconds(90));
            Figures.Add(new Figure("`tune up` process SIGKILLed and restarted (real process)", kills, kills, 2, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
                "killed after " + string.Join("; ", moments)));
            outcome.ShouldHold();
        }
        finally
        {
            second.Kill(entireProcessTree: true);
            await second.WaitForExitAsync();
        }
    }
}

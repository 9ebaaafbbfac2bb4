using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Pipeline.Resilience;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>
/// Throttled, flaky storage and broker: faults and latency injected with Polly's chaos strategies into every blob and
/// bus call of the host and of its trainers, at <c>RELIABILITY_CHAOS_RATE</c> (default 20 %).
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class ChaosTests
{
    private static double Rate => double.TryParse(Environment.GetEnvironmentVariable("RELIABILITY_CHAOS_RATE"), System.Globalization.CultureInfo.InvariantCulture, out var r) ? r : 0.2;

    [Fact]
    public async Task FaultsAndLatencyInEveryBlobAndBusCall_EveryJobCompletes()
    {
        var watch = Figures.Start();
        var jobs = 5 * Figures.Repeats;
        await using var cluster = new Cluster();
        await cluster.StartAsync(maxConcurrentJobs: 2, chaos: new ChaosOptions(Rate, Rate, TimeSpan.FromMilliseconds(20)));
        for (var i = 0; i < jobs; i++)
        {
            await cluster.DropAsync($"flaky-{i}", "a.jsonl", Cluster.Corpus(30, $" {i}"), Cluster.Spec());
        }

        // Settled means the broker is drained too: under injected latency the publisher may still be completing the
        // TrainingCompleted it handled when the job already reads Published; stopping the host then would leave it locked.
        var done = await cluster.SettleAsync(expectedJobs: jobs, seconds: 400, done: j => j.Count(x => x.State == JobState.Published) == jobs
            && cluster.Events.Count(e => e.Type == nameof(ModelPublished)) >= jobs && cluster.PendingMessages() == 0);
        await cluster.StopAsync();
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: jobs, expectedVersions: jobs);
        Figures.Add(new Figure($"storage + bus faults and latency at {Rate:P0}", jobs, cluster.FaultsInjected, jobs, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            $"host: {cluster.FaultsInjected} faults injected, {cluster.Retries} retries; trainers ran with the same rate; {done.Sum(j => j.Attempts) - jobs} trainer re-runs"));
        outcome.ShouldHold();
        cluster.FaultsInjected.ShouldBeGreaterThan(10, "chaos was on");
    }
}

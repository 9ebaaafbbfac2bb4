using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Pipeline.Ingest;
using Serverless.Pipeline.Messaging;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>At-least-once delivery everywhere: the same event many times must change nothing twice.</summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class DuplicateTests
{
    [Fact]
    public async Task SameBlobEvent100Times_AndSameTrainingCompleted50Times_OneJobOneVersion()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.DropAsync("echo", "a.jsonl", Cluster.Corpus(40), Cluster.Spec());
        var blob = (await cluster.Pipeline.Blobs.GetAsync(Containers.Datasets, "echo/a.jsonl"))!;
        var sent = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Task.Run(() =>
            cluster.Pipeline.Runtime.Ingest.HandleAsync(new DatasetUploaded(blob.Name, blob.ETag)))));
        sent.Count(s => s).ShouldBeLessThanOrEqualTo(1, "the queue's duplicate detection keeps one request per blob version");

        var job = (await cluster.SettleAsync(expectedJobs: 1, done: _ => cluster.Events.Any(e => e.Type == nameof(ModelPublished)))).Single();
        var completed = new TrainingCompleted(job.Model, job.JobId, $"{job.JobId}/candidate/", job.Metrics!);
        for (var i = 0; i < 50; i++)
        {
            // Copies under new message ids, so duplicate detection cannot help: the handler itself must be idempotent.
            await cluster.Pipeline.Runtime.Bus.PublishAsync(Entities.TrainingEvents, completed, $"again-{i}", "/tests");
        }

        await Cluster.UntilAsync(() => Task.FromResult(cluster.PendingMessages() == 0 ? "drained" : null), 60, "the copies to be handled");
        await cluster.SettleAsync(expectedJobs: 1);
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 1, expectedVersions: 1);
        var announcements = cluster.Events.Count(e => e.Type == nameof(ModelPublished));
        Figures.Add(new Figure("duplicates — blob event ×100, TrainingCompleted ×50", 150, 0, 1, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed,
            $"ModelPublished delivered {announcements}× under 1 id"));
        outcome.ShouldHold();
    }

    [Fact]
    public async Task TwentyFilesUploadedAtOnce_IntoFiveDatasets_FiveJobsFiveVersions()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync(maxConcurrentJobs: 2);
        var models = Enumerable.Range(0, 5).Select(i => $"burst-{i}").ToList();
        foreach (var model in models)
        {
            await cluster.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", Cluster.Spec(debounceSeconds: 2).ToJsonString());
        }

        await Task.WhenAll(models.SelectMany(m => Enumerable.Range(0, 4).Select(f => Task.Run(() =>
            cluster.WriteAsync(Containers.Datasets, $"{m}/part-{f}.jsonl", Cluster.Corpus(12, $" {m} {f}"))))));

        var jobs = await cluster.SettleAsync(expectedJobs: 5, seconds: 300, done: j => j.Count(x => x.State == JobState.Published) == 5);
        var outcome = await Invariants.CheckAsync(cluster, expectedJobs: 5, expectedVersions: 5);
        Figures.Add(new Figure("duplicates — 20 files uploaded at once (5 datasets)", 20, 0, 5, outcome.JobsCompleted, outcome.Duplicates, outcome.Lost, watch.Elapsed));
        outcome.ShouldHold();
        jobs.Select(j => j.Model).Order().ShouldBe(models);
        jobs.ShouldAllBe(j => j.Dataset.Count == 4, "each burst became one job over all four of its files");
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;

namespace Serverless.Cli.Tests.Pipeline;

/// <summary>The embedded pipeline end to end: files dropped into storage, trainers as child processes, events out.</summary>
public sealed class PipelineEndToEndTests
{
    [Fact]
    public async Task Drop_PublishesAVersionWithManifestAndCard()
    {
        await using var h = new PipelineHarness();
        await h.StartAsync();
        await h.DropAsync("poems", "a.jsonl", PipelineHarness.Corpus(40), PipelineHarness.Spec());

        var e = await h.WaitForEventAsync(nameof(ModelPublished));
        var published = e.DataAs<ModelPublished>();
        (e.Subject, published.Version, published.Uri).ShouldBe(("poems", 1, "model-registry/poems/1/"));
        published.Aliases.ShouldBe(["champion", "latest"]);

        var version = Path.Combine(h.Home, Containers.Registry, "poems", "1");
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(version, "manifest.json")))!;
        foreach (var (file, hash) in manifest["files"]!.AsObject())
        {
            Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(version, file)))).ShouldBe(hash!.GetValue<string>(), file);
        }

        manifest["lineage"]!["job"]!.GetValue<string>().ShouldBe(published.JobId);
        manifest["lineage"]!["dataset"]![0]!["name"]!.GetValue<string>().ShouldBe("poems/a.jsonl");
        var card = File.ReadAllText(Path.Combine(version, "README.md"));
        card.ShouldStartWith("---\n");
        card.ShouldContain($"base_model: {PipelineHarness.BaseModel}");
        card.ShouldContain("model-index:");
        card.ShouldContain("      split: test");
        foreach (var section in new[] { "## Model description", "## Intended uses & limitations", "## Training data", "## Training procedure", "## Evaluation results", "## Bias, risks and limitations" })
        {
            card.ShouldContain(section, customMessage: "Hugging Face's model-card sections");
        }
        var job = (await h.Pipeline.Runtime.Jobs.GetAsync(published.JobId))!.Value.Job;
        job.History.Select(t => t.State).ShouldBe([JobState.Preparing, JobState.Dispatched, JobState.Running, JobState.Completed, JobState.Published]);

        // One trace from the upload to the published event, across processes (the trainer is a child process).
        var trace = System.Diagnostics.ActivityContext.Parse(job.TraceParent!, null).TraceId;
        System.Diagnostics.ActivityContext.Parse(e.TraceParent!, null).TraceId.ShouldBe(trace);
    }

    [Fact]
    public async Task BadDataset_IsRejectedWithEveryErrorsFileAndLine()
    {
        await using var h = new PipelineHarness();
        await h.StartAsync();
        await h.DropAsync("broken", "bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": 7}\nnot json\n{\"prompt\": \"only\"}\n", PipelineHarness.Spec());

        var rejected = (await h.WaitForEventAsync(nameof(DatasetRejected))).DataAs<DatasetRejected>();
        rejected.TotalErrors.ShouldBe(3);
        rejected.Errors.Select(p => (p.File, p.Line)).ShouldBe([("bad.jsonl", 2L), ("bad.jsonl", 3L), ("bad.jsonl", 4L)]);
        var job = (await h.Pipeline.Runtime.Jobs.GetAsync(rejected.JobId))!.Value.Job;
        job.State.ShouldBe(JobState.Failed);
        job.DatasetErrors!.Count.ShouldBe(3);
    }

    [Fact]
    public async Task SameFileTwice_AndTheSameEventTwice_OneJobOneVersion()
    {
        await using var h = new PipelineHarness();
        await h.StartAsync();
        var corpus = PipelineHarness.Corpus(40);
        await h.DropAsync("twice", "a.jsonl", corpus, PipelineHarness.Spec());
        await h.DropAsync("twice", "a.jsonl", corpus);                 // same content again: a new blob event, the same snapshot
        var published = (await h.WaitForEventAsync(nameof(ModelPublished))).DataAs<ModelPublished>();

        // The same TrainingCompleted delivered again.
        var job = (await h.Pipeline.Runtime.Jobs.GetAsync(published.JobId))!.Value.Job;
        var completed = new TrainingCompleted(job.Model, job.JobId, $"{job.JobId}/candidate/", job.Metrics!);
        await h.Pipeline.Runtime.Bus.PublishAsync(Entities.TrainingEvents, completed, PipelineBusId(job.JobId), "/tests");
        await h.Pipeline.Runtime.Publish.HandleAsync(CloudEvent.Create(completed, PipelineBusId(job.JobId), "/tests", DateTimeOffset.UtcNow));
        await h.Until(async () => (await h.Pipeline.Bus.ReceiveAsync(Entities.Subscription(Entities.TrainingEvents, Entities.PublisherSubscription))).Count == 0 ? "drained" : null, 30, "the redelivered event to be handled");

        (await h.JobsAsync()).Count.ShouldBe(1);
        var index = (await h.Pipeline.Runtime.Registry.ReadIndexAsync("twice"))!.Value.Index;
        index.Versions.Count.ShouldBe(1);
    }

    private static string PipelineBusId(string jobId) => Serverless.Pipeline.Messaging.PipelineBus.StableId(jobId, nameof(TrainingCompleted));

    [Fact]
    public async Task GateNotPassed_ModelRejected_RegistryUntouched()
    {
        await using var h = new PipelineHarness();
        await h.StartAsync();
        await h.DropAsync("strict", "a.jsonl", PipelineHarness.Corpus(40), PipelineHarness.Spec(minImprovement: 0.99));

        var rejected = (await h.WaitForEventAsync(nameof(ModelRejected))).DataAs<ModelRejected>();
        rejected.Reasons.Single().ShouldContain("minImprovementOverBase");
        (await h.Pipeline.Runtime.Registry.ReadIndexAsync("strict")).ShouldBeNull();
        (await h.Pipeline.Runtime.Jobs.GetAsync(rejected.JobId))!.Value.Job.State.ShouldBe(JobState.Rejected);
    }

    [Fact]
    public async Task Cancel_StopsTrainingWithACheckpoint()
    {
        await using var h = new PipelineHarness();
        await h.StartAsync();
        await h.DropAsync("long", "a.jsonl", PipelineHarness.Corpus(40), PipelineHarness.Spec(steps: 100_000, checkpointEvery: 5));
        var running = await h.WaitForJobAsync(j => j.State == JobState.Running && j.Progress is not null, "the job to report progress");
        await h.Until(async () => await h.Pipeline.Blobs.GetAsync(Containers.Checkpoints, $"{running.JobId}/candidate/latest.json"), 60, "a checkpoint");

        var result = CliFixture.Run("cancel", running.JobId, "--home", h.Home);
        result.ExitCode.ShouldBe(0, result.Error);
        var cancelled = await h.WaitForJobAsync(j => j.JobId == running.JobId && j.State == JobState.Cancelled, "the job to be cancelled", 60);
        cancelled.History[^1].Note!.ShouldContain("checkpoint kept");
    }

    [Fact]
    public async Task TrainerKilled_ResumesFromItsCheckpointAndPublishes()
    {
        await using var h = new PipelineHarness();
        await h.StartAsync();
        await h.DropAsync("sturdy", "a.jsonl", PipelineHarness.Corpus(40), PipelineHarness.Spec(steps: 400, checkpointEvery: 10));
        var running = await h.WaitForJobAsync(j => j.State == JobState.Running, "the trainer to start");
        await h.Until(async () => await h.Pipeline.Blobs.GetAsync(Containers.Checkpoints, $"{running.JobId}/candidate/latest.json"), 60, "a checkpoint");

        var pid = h.Pipeline.Dispatcher.ProcessIds[running.JobId];
        Process.GetProcessById(pid).Kill();                                   // SIGKILL, as a preempted container

        var published = (await h.WaitForEventAsync(nameof(ModelPublished), seconds: 240)).DataAs<ModelPublished>();
        published.JobId.ShouldBe(running.JobId);
        var job = (await h.Pipeline.Runtime.Jobs.GetAsync(running.JobId))!.Value.Job;
        job.Attempts.ShouldBe(2);
        job.History.ShouldContain(t => t.Note != null && t.Note.Contains("retrying"));
        var metrics = Serverless.Model.FineTuning.FineTuneReport.FromJson(job.Metrics!.ToJsonString());
        metrics.CandidateTraining.TrainLoss.Count.ShouldBe(400, "resumed, not restarted: the history runs from step 1 to the end once");
    }
}

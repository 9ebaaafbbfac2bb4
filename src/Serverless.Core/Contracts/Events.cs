using System.Text.Json.Nodes;

namespace Serverless.Core.Contracts;

/// <summary>Something that happened in the pipeline; carried as the <c>data</c> of a CloudEvent whose <c>subject</c> is <see cref="Model"/>.</summary>
public interface IPipelineEvent
{
    /// <summary>The model the event concerns.</summary>
    string Model { get; }
}

/// <summary>A request to fine-tune <see cref="Model"/> on its dataset folder as it is when prepared.</summary>
/// <param name="Model">The model name (the folder under <c>datasets/</c>).</param>
/// <param name="Trigger"><c>upload</c>, <c>schedule</c>, <c>submit</c> or <c>retry</c>.</param>
/// <param name="TriggerKey">Distinguishes requests that should train separately even on the same data (a schedule occurrence); uploads share one key, so a burst becomes one job.</param>
/// <param name="Spec">A spec overriding <c>datasets/{model}/tune.json</c> (from <c>tune submit --spec</c>), or null.</param>
/// <param name="JobId">Set when the request continues an existing job (dispatch retry), else null.</param>
public sealed record FineTuneRequested(string Model, string Trigger, string TriggerKey, JsonObject? Spec = null, string? JobId = null) : IPipelineEvent;

/// <summary>The trainer started (or resumed) a job.</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job.</param>
/// <param name="Attempt">1 for the first run, more for retries.</param>
/// <param name="ResumedFromStep">The checkpoint step resumed from, if any.</param>
/// <param name="Memory">The trainer's peak-memory estimate and the limit it runs under (for an out-of-memory report).</param>
public sealed record TrainingStarted(string Model, string JobId, int Attempt, int? ResumedFromStep, Jobs.MemoryBudget? Memory = null) : IPipelineEvent;

/// <summary>Training progress, throttled to one every few seconds (a step with a validation loss is always reported).</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job.</param>
/// <param name="Phase"><c>candidate</c> or <c>scratch</c>.</param>
/// <param name="Step">Steps done.</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Loss">Last training loss.</param>
/// <param name="TokensPerSecond">Throughput.</param>
/// <param name="EtaSeconds">Estimated seconds left in this phase.</param>
/// <param name="ValidationLoss">The validation loss when this step evaluated one; null otherwise (and from trainers before it was added).</param>
public sealed record TrainingProgress(string Model, string JobId, string Phase, int Step, int TotalSteps, double Loss, double TokensPerSecond, double EtaSeconds,
    double? ValidationLoss = null) : IPipelineEvent;

/// <summary>Training and evaluation finished; the candidate is in <see cref="CandidatePath"/>.</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job.</param>
/// <param name="CandidatePath">Blob prefix of the candidate (<c>checkpoints/{jobId}/candidate/</c>).</param>
/// <param name="Metrics">The candidate's <c>metrics.json</c>.</param>
public sealed record TrainingCompleted(string Model, string JobId, string CandidatePath, JsonObject Metrics) : IPipelineEvent;

/// <summary>Training failed.</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job.</param>
/// <param name="Error">What went wrong.</param>
/// <param name="Retryable">Whether running again (from the checkpoint) can help: true for a crash or a lost machine, false for a bad spec or model.</param>
/// <param name="Environmental">
/// The environment ran out (disk full, no capacity or quota, storage busy, killed for memory): the job waits and tries
/// again later without spending a crash attempt. Implies <paramref name="Retryable"/>.
/// </param>
/// <param name="RetryAfterSeconds">When the environment said when to try again (a <c>Retry-After</c>), in seconds.</param>
public sealed record TrainingFailed(string Model, string JobId, string Error, bool Retryable, bool Environmental = false, double? RetryAfterSeconds = null) : IPipelineEvent;

/// <summary>A job waits for the environment (on <c>model-events</c>, so people and tools can see it); it resumes by itself.</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job.</param>
/// <param name="Reason">What ran out.</param>
/// <param name="NextTryAt">When it is tried again; null while it waits for a run the environment has not started yet.</param>
/// <param name="GiveUpAt">When it fails for good if the environment has not recovered (the wait horizon).</param>
public sealed record JobWaiting(string Model, string JobId, string Reason, DateTimeOffset? NextTryAt, DateTimeOffset GiveUpAt) : IPipelineEvent;

/// <summary>A model version was approved and published.</summary>
/// <param name="Model">The model.</param>
/// <param name="Version">The new version (1, 2, 3…).</param>
/// <param name="JobId">The job that trained it.</param>
/// <param name="Uri">Where it is (<c>model-registry/{model}/{version}/</c>).</param>
/// <param name="Files">SHA-256 of every file in the version.</param>
/// <param name="Perplexity">Candidate, base, scratch and champion perplexity on the job's validation split.</param>
/// <param name="Aliases">Aliases now pointing at this version (<c>latest</c>, <c>champion</c>).</param>
public sealed record ModelPublished(
    string Model, int Version, string JobId, string Uri, IReadOnlyDictionary<string, string> Files,
    IReadOnlyDictionary<string, double?> Perplexity, IReadOnlyList<string> Aliases) : IPipelineEvent;

/// <summary>A candidate did not pass the gate; the registry is untouched.</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job.</param>
/// <param name="Reasons">Each failed condition with its numbers.</param>
/// <param name="Perplexity">Candidate, base, scratch and champion perplexity.</param>
public sealed record ModelRejected(string Model, string JobId, IReadOnlyList<string> Reasons, IReadOnlyDictionary<string, double?> Perplexity) : IPipelineEvent;

/// <summary>A dataset could not be used; every problem found is listed.</summary>
/// <param name="Model">The model.</param>
/// <param name="JobId">The job recorded as failed.</param>
/// <param name="Errors">Each problem with its file and line.</param>
/// <param name="TotalErrors">All problems found (the list is capped).</param>
public sealed record DatasetRejected(string Model, string JobId, IReadOnlyList<DatasetProblem> Errors, int TotalErrors) : IPipelineEvent;

/// <summary>One problem in a dataset file.</summary>
/// <param name="File">The file.</param>
/// <param name="Line">1-based line, if the problem is on one.</param>
/// <param name="Field">The JSON field, if any.</param>
/// <param name="Message">What is wrong.</param>
public sealed record DatasetProblem(string File, long? Line, string? Field, string Message);

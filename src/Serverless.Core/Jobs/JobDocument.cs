using System.Text.Json.Nodes;

namespace Serverless.Core.Jobs;

/// <summary>
/// The states of a job. Terminal: <c>Published</c>, <c>Rejected</c>, <c>Failed</c>, <c>Cancelled</c> (the last two
/// leave it only by a retry on request).
/// </summary>
public enum JobState
{
    /// <summary>Snapshot taken; validating and tokenizing.</summary>
    Preparing,

    /// <summary>A trainer was started (or is queued to start).</summary>
    Dispatched,

    /// <summary>The trainer is training.</summary>
    Running,

    /// <summary>
    /// The environment ran out (disk full, no GPU capacity or quota, storage busy, killed for memory): nothing is wrong
    /// with the job, so it waits — its checkpoint kept, no crash attempt spent — and tries again at
    /// <see cref="JobWait.NextTryAt"/> (or, for a run the environment has not started yet, when it starts).
    /// </summary>
    Waiting,

    /// <summary>Trained and evaluated; the Publish stage decides.</summary>
    Completed,

    /// <summary>Approved and in the registry.</summary>
    Published,

    /// <summary>Did not pass the gate.</summary>
    Rejected,

    /// <summary>Failed for good (bad data, bad spec, or out of retries).</summary>
    Failed,

    /// <summary>Cancelled on request, with a checkpoint.</summary>
    Cancelled,
}

/// <summary>The allowed transitions: every job history is a path through these.</summary>
public static class JobStates
{
    private static readonly Dictionary<JobState, JobState[]> Next = new()
    {
        [JobState.Preparing] = [JobState.Dispatched, JobState.Failed, JobState.Cancelled],
        [JobState.Dispatched] = [JobState.Running, JobState.Failed, JobState.Cancelled, JobState.Dispatched, JobState.Waiting],
        [JobState.Running] = [JobState.Completed, JobState.Failed, JobState.Cancelled, JobState.Dispatched, JobState.Waiting],
        [JobState.Waiting] = [JobState.Dispatched, JobState.Running, JobState.Failed, JobState.Cancelled],
        [JobState.Completed] = [JobState.Published, JobState.Rejected],
        [JobState.Published] = [],
        [JobState.Rejected] = [],
        [JobState.Failed] = [JobState.Dispatched],      // retried on request
        [JobState.Cancelled] = [JobState.Dispatched],   // retried on request
    };

    private static readonly HashSet<JobState> Terminal = [JobState.Published, JobState.Rejected, JobState.Failed, JobState.Cancelled];

    /// <summary>Whether a job in <paramref name="from"/> may move to <paramref name="to"/> (a retry moves Running back to Dispatched).</summary>
    public static bool CanMove(JobState from, JobState to) => Next[from].Contains(to);

    /// <summary>Whether the state is final: nothing moves the job on by itself (a failed or cancelled job moves only when retried on request).</summary>
    public static bool IsTerminal(JobState state) => Terminal.Contains(state);

    /// <summary>Whether <c>tune retry</c> can run a job in this state again.</summary>
    public static bool CanRetry(JobState state) => state is JobState.Failed or JobState.Cancelled or JobState.Waiting;
}

/// <summary>Why a job waits and until when.</summary>
/// <param name="Reason">What ran out, for people (<c>no space left on device writing a checkpoint…</c>).</param>
/// <param name="Since">When this stretch of waiting began (the horizon counts from here).</param>
/// <param name="NextTryAt">When it is tried again; null while it waits for a run the environment has not started yet.</param>
/// <param name="Tries">Environmental failures in this stretch.</param>
/// <param name="AtStep">The training progress (phase and step) when the stretch began: the stretch lasts until the job gets past it.</param>
public sealed record JobWait(string Reason, DateTimeOffset Since, DateTimeOffset? NextTryAt, int Tries, string? AtStep = null);

/// <summary>One file of a dataset snapshot.</summary>
/// <param name="Name">The blob name (<c>datasets/{model}/x.jsonl</c>).</param>
/// <param name="ETag">Its ETag when snapshotted.</param>
/// <param name="Length">Bytes.</param>
/// <param name="Sha256">Hex SHA-256 of its content.</param>
public sealed record SnapshotFile(string Name, string ETag, long Length, string Sha256);

/// <summary>What the trainer expected to need and what it was allowed.</summary>
/// <param name="EstimatedBytes">Its estimate of peak resident memory.</param>
/// <param name="LimitBytes">The limit it ran under (cgroup, or physical memory).</param>
public sealed record MemoryBudget(long EstimatedBytes, long LimitBytes);

/// <summary>A state change, with when and why.</summary>
/// <param name="State">The new state.</param>
/// <param name="At">When.</param>
/// <param name="Note">Why, for people.</param>
public sealed record JobTransition(JobState State, DateTimeOffset At, string? Note);

/// <summary>The latest progress reported by the trainer.</summary>
/// <param name="Phase"><c>candidate</c> or <c>scratch</c>.</param>
/// <param name="Step">Steps done.</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Loss">Last training loss.</param>
/// <param name="TokensPerSecond">Throughput.</param>
/// <param name="EtaSeconds">Seconds left in this phase.</param>
/// <param name="At">When reported.</param>
public sealed record JobProgress(string Phase, int Step, int TotalSteps, double Loss, double TokensPerSecond, double EtaSeconds, DateTimeOffset At);

/// <summary>
/// <c>jobs/{jobId}.json</c>: everything about one job. Every change is a conditional write on the blob's ETag
/// (<see cref="JobStore"/>), so two writers can never both win.
/// </summary>
public sealed record JobDocument
{
    /// <summary>Deterministic: a hash of model, dataset snapshot, spec and trigger key.</summary>
    public required string JobId { get; init; }

    /// <summary>The model name.</summary>
    public required string Model { get; init; }

    /// <summary>What started it (<c>upload</c>, <c>schedule</c>, <c>submit</c>).</summary>
    public required string Trigger { get; init; }

    /// <summary>The trigger key that went into the id.</summary>
    public required string TriggerKey { get; init; }

    /// <summary>The spec as given (tune.json or submitted), fields as in the README.</summary>
    public required JsonObject Spec { get; init; }

    /// <summary>Every dataset file at the moment of the snapshot.</summary>
    public required IReadOnlyList<SnapshotFile> Dataset { get; init; }

    /// <summary>SHA-256 over the snapshot's names and hashes.</summary>
    public required string DatasetHash { get; init; }

    /// <summary>The current state.</summary>
    public JobState State { get; init; } = JobState.Preparing;

    /// <summary>Every transition, oldest first.</summary>
    public IReadOnlyList<JobTransition> History { get; init; } = [];

    /// <summary>Trainer runs started (retries add one).</summary>
    public int Attempts { get; init; }

    /// <summary>Crash failures (retryable, not environmental) counted against <c>maxAttempts</c>; a retry on request starts again from 0.</summary>
    public int Crashes { get; init; }

    /// <summary>Why and until when the job waits, while it is <see cref="JobState.Waiting"/> (kept afterwards as the last wait).</summary>
    public JobWait? Wait { get; init; }

    /// <summary>The trainer's memory estimate and the limit it saw, in bytes, once a trainer started (for an out-of-memory report).</summary>
    public MemoryBudget? Memory { get; init; }

    /// <summary>Whether retention removed the job's prepared shards and checkpoints (it can no longer be retried).</summary>
    public bool Swept { get; init; }

    /// <summary>The dispatcher's name for the current trainer run.</summary>
    public string? Execution { get; init; }

    /// <summary>Latest progress.</summary>
    public JobProgress? Progress { get; init; }

    /// <summary>The candidate's metrics, once trained.</summary>
    public JsonObject? Metrics { get; init; }

    /// <summary>What went wrong, when failed or rejected.</summary>
    public string? Error { get; init; }

    /// <summary>Dataset problems, when the dataset was rejected.</summary>
    public IReadOnlyList<Contracts.DatasetProblem>? DatasetErrors { get; init; }

    /// <summary>Set by <c>tune cancel</c>; the trainer stops at its next step with a checkpoint.</summary>
    public bool CancelRequested { get; init; }

    /// <summary>The registry version, once published.</summary>
    public int? Version { get; init; }

    /// <summary>The W3C trace context of the request that created the job; the trainer continues this trace.</summary>
    public string? TraceParent { get; init; }

    /// <summary>When the job was created.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>
    /// This document with a cancel requested: a job that never reached a trainer is cancelled at once; a running one
    /// is flagged, and its trainer stops at the next step with a checkpoint. Null when there is nothing to cancel.
    /// </summary>
    public JobDocument? RequestCancel(DateTimeOffset at) =>
        JobStates.IsTerminal(State) || State == JobState.Completed ? null
        : State is JobState.Preparing or JobState.Waiting || (State == JobState.Dispatched && Execution is null)
            ? MoveTo(JobState.Cancelled, at, "cancelled before training started") with { CancelRequested = true }
            : this with { CancelRequested = true };

    /// <summary>
    /// This document moved back to <c>dispatched</c> by a retry on request, with a fresh crash budget, its wait and
    /// cancel cleared; null when its state cannot be retried (<see cref="JobStates.CanRetry"/>).
    /// </summary>
    public JobDocument? Retry(DateTimeOffset at) =>
        !JobStates.CanRetry(State) || Swept || (State == JobState.Waiting && Execution is not null) ? null
        : MoveTo(JobState.Dispatched, at, $"retried on request (was {State.ToString().ToLowerInvariant()})") with
        {
            Crashes = 0, Execution = null, CancelRequested = false, Error = null, Wait = null,
        };

    /// <summary>This document moved to <paramref name="state"/> at <paramref name="at"/>; throws if the move is not allowed.</summary>
    public JobDocument MoveTo(JobState state, DateTimeOffset at, string? note = null)
    {
        if (!JobStates.CanMove(State, state))
        {
            throw new InvalidOperationException($"Job {JobId} cannot move from {State} to {state}.");
        }

        return this with { State = state, History = [.. History, new JobTransition(state, at, note)] };
    }
}

namespace Serverless.Pipeline.Messaging;

/// <summary>Settings of the stages.</summary>
public sealed record PipelineOptions
{
    /// <summary>A local folder for downloaded models, datasets and the trainer's working files.</summary>
    public required string WorkDirectory { get; init; }

    /// <summary>Trainers allowed at once; extra jobs wait their turn. <value>1</value>.</summary>
    public int MaxConcurrentJobs { get; init; } = 1;

    /// <summary>How long a job waits before trying again to find a free trainer. <value>3 s</value>.</summary>
    public TimeSpan DispatchRetryDelay { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Most time between two progress events. <value>3 s</value>.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long a trainer claim may go without the trainer reporting <c>running</c> before another host takes it over
    /// (which first adopts a run of the job that is still starting). Long enough for a serverless GPU's cold start:
    /// image pull and scheduling take minutes. <value>10 min</value>.
    /// </summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How often the trainer watch looks for lost trainer runs. <value>1 min</value>.</summary>
    public TimeSpan WatchInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a run the dispatcher does not know may go without progress before it is declared lost. <value>10 min</value>.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Lock duration, maximum deliveries and duplicate detection of the pipeline's queue and subscriptions.</summary>
    public Serverless.Core.Ports.EntityOptions Entities { get; init; } = new();

    /// <summary>First retry delay after a retryable failure; doubles each attempt. <value>2 s</value>.</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest retry delay, however many attempts came before. <value>5 min</value>.</summary>
    public TimeSpan MaxRetryBackoff { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>First wait after the environment ran out (disk, capacity, memory); doubles each time, unless the environment said when (Retry-After). <value>30 s</value>.</summary>
    public TimeSpan WaitBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest single wait. <value>15 min</value>.</summary>
    public TimeSpan MaxWaitBackoff { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>How long a job may keep waiting for the environment before it fails for good (it can still be retried on request). <value>12 h</value>.</summary>
    public TimeSpan WaitHorizon { get; init; } = TimeSpan.FromHours(12);

    /// <summary>How long a started trainer run may stay pending (the environment has not scheduled it) before the job shows as waiting. <value>5 min</value>.</summary>
    public TimeSpan PendingNotice { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Prepared shards, checkpoints and work files of jobs finished (published, rejected, failed, cancelled) longer ago than this are removed; registry versions never are. <value>7 days</value>.</summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How often the retention sweep runs in a long-running host. <value>1 h</value>.</summary>
    public TimeSpan RetentionInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// The memory the trainer checks its estimate against, in bytes; null means what the runtime sees (the container's
    /// cgroup limit, else physical memory). The trainer program reads <c>TUNE_MEMORY_LIMIT</c> into it.
    /// </summary>
    public long? MemoryLimit { get; init; }

    /// <summary>The wait before try <paramref name="tries"/> (1-based) of a job waiting for the environment.</summary>
    public TimeSpan WaitFor(int tries, TimeSpan? retryAfter = null)
    {
        if (retryAfter is { } said && said > TimeSpan.Zero)
        {
            return said < MaxWaitBackoff ? said : MaxWaitBackoff;
        }

        var backoff = WaitBackoff * Math.Pow(2, Math.Min(30, Math.Max(0, tries - 1)));
        return backoff < MaxWaitBackoff ? backoff : MaxWaitBackoff;
    }

    /// <summary>Throws, naming the setting, when a value cannot work (no trainer slots, a non-positive interval).</summary>
    public void Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(WorkDirectory))
        {
            problems.Add("WorkDirectory is empty");
        }

        if (MaxConcurrentJobs < 1)
        {
            problems.Add($"MaxConcurrentJobs is {MaxConcurrentJobs}: at least 1 trainer must be allowed, or every job waits forever");
        }

        foreach (var (name, value) in new[] { (nameof(DispatchRetryDelay), DispatchRetryDelay), (nameof(ProgressInterval), ProgressInterval), (nameof(StartTimeout), StartTimeout),
            (nameof(WatchInterval), WatchInterval), (nameof(HeartbeatTimeout), HeartbeatTimeout), (nameof(RetryBackoff), RetryBackoff), (nameof(MaxRetryBackoff), MaxRetryBackoff),
            (nameof(WaitBackoff), WaitBackoff), (nameof(MaxWaitBackoff), MaxWaitBackoff), (nameof(WaitHorizon), WaitHorizon), (nameof(PendingNotice), PendingNotice),
            (nameof(Retention), Retention), (nameof(RetentionInterval), RetentionInterval) })
        {
            if (value <= TimeSpan.Zero)
            {
                problems.Add($"{name} is {value}: it must be positive");
            }
        }

        if (MaxRetryBackoff < RetryBackoff)
        {
            problems.Add($"MaxRetryBackoff ({MaxRetryBackoff}) is shorter than RetryBackoff ({RetryBackoff})");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException($"Invalid pipeline options: {string.Join("; ", problems)}.");
        }
    }
}

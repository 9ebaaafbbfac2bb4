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
            (nameof(WatchInterval), WatchInterval), (nameof(HeartbeatTimeout), HeartbeatTimeout), (nameof(RetryBackoff), RetryBackoff), (nameof(MaxRetryBackoff), MaxRetryBackoff) })
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

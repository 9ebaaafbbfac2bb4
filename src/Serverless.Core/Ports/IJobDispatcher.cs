namespace Serverless.Core.Ports;

/// <summary>How a trainer run is doing, as the dispatcher sees it.</summary>
public enum ExecutionStatus
{
    /// <summary>Starting or running.</summary>
    Running,

    /// <summary>Exited successfully.</summary>
    Succeeded,

    /// <summary>Exited with an error, was killed, or vanished.</summary>
    Failed,

    /// <summary>The dispatcher knows no such run.</summary>
    Unknown,
}

/// <summary>Starts trainer runs: a child process locally, a Container Apps job execution in Azure.</summary>
public interface IJobDispatcher
{
    /// <summary>
    /// Starts attempt <paramref name="attempt"/> of <paramref name="jobId"/>'s training; returns the run's name. A
    /// dispatcher that can see runs started elsewhere (Azure) returns a live run of the same job and attempt instead of
    /// starting a second one (never one of an earlier attempt, which may be exiting).
    /// </summary>
    Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default);

    /// <summary>Stops the run (after a grace period in which it may checkpoint).</summary>
    Task CancelAsync(string execution, CancellationToken cancellationToken = default);

    /// <summary>The run's status.</summary>
    Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default);

    /// <summary>Runs still going.</summary>
    Task<int> CountRunningAsync(CancellationToken cancellationToken = default);
}

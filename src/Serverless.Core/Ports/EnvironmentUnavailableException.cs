namespace Serverless.Core.Ports;

/// <summary>
/// The environment cannot take the work now, though nothing is wrong with it: no GPU capacity or quota for a trainer
/// run, storage or the broker busy past their retries, no disk space. The job waits and tries again later (when
/// <see cref="RetryAfter"/> says, if the environment said) without spending a crash attempt.
/// </summary>
public sealed class EnvironmentUnavailableException : Exception
{
    /// <summary>Creates the exception with what ran out and, if known, when to try again.</summary>
    public EnvironmentUnavailableException(string message, TimeSpan? retryAfter, Exception? inner = null) : base(message, inner) => RetryAfter = retryAfter;

    /// <summary>Creates the exception.</summary>
    public EnvironmentUnavailableException() { }

    /// <summary>Creates the exception.</summary>
    public EnvironmentUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public EnvironmentUnavailableException(string message, Exception inner) : base(message, inner) { }

    /// <summary>When the environment said to try again (a <c>Retry-After</c>); null when it did not say.</summary>
    public TimeSpan? RetryAfter { get; }
}

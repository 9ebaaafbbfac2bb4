using Polly;
using Polly.Retry;
using Polly.Simmy;
using Polly.Simmy.Fault;
using Polly.Simmy.Latency;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Resilience;

/// <summary>A fault injected on purpose by chaos mode (<c>TUNE_CHAOS</c>); transient, like the storage errors it imitates.</summary>
public sealed class InjectedFaultException : IOException
{
    /// <summary>Creates the exception.</summary>
    public InjectedFaultException() : base("chaos: injected fault")
    {
    }

    /// <summary>Creates the exception.</summary>
    public InjectedFaultException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public InjectedFaultException(string message, Exception inner) : base(message, inner)
    {
    }
}

/// <summary>Chaos mode: the share of blob and bus calls that fail, and that are delayed, and by how much.</summary>
/// <param name="FaultRate">Share of calls that throw <see cref="InjectedFaultException"/> (0–1).</param>
/// <param name="LatencyRate">Share of calls delayed by <paramref name="Latency"/> (0–1).</param>
/// <param name="Latency">The injected delay.</param>
public sealed record ChaosOptions(double FaultRate, double LatencyRate, TimeSpan Latency)
{
    /// <summary>The environment variable that turns chaos mode on: a rate such as <c>0.2</c>.</summary>
    public const string Variable = "TUNE_CHAOS";

    /// <summary>Chaos mode from <c>TUNE_CHAOS</c> (fault and latency rate) and <c>TUNE_CHAOS_LATENCY_MS</c> (default 20), or null when unset or 0.</summary>
    public static ChaosOptions? FromEnvironment(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (environment(Variable) is not { Length: > 0 } text)
        {
            return null;
        }

        if (!double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var rate) || rate is < 0 or >= 1 || double.IsNaN(rate))
        {
            throw new ArgumentException($"{Variable}={text} is not a rate between 0 and 1 (such as 0.2).");
        }

        var latency = environment(Variable + "_LATENCY_MS") is { Length: > 0 } ms && int.TryParse(ms, out var parsed) && parsed >= 0 ? parsed : 20;
        return rate == 0 ? null : new ChaosOptions(rate, rate, TimeSpan.FromMilliseconds(latency));
    }
}

/// <summary>What the policies did, counted across every wrapped port in this process.</summary>
public sealed class PortPolicyCounters
{
    private long _faults;
    private long _delays;
    private long _retries;

    /// <summary>Faults injected by chaos mode.</summary>
    public long FaultsInjected => Interlocked.Read(ref _faults);

    /// <summary>Delays injected by chaos mode.</summary>
    public long LatencyInjected => Interlocked.Read(ref _delays);

    /// <summary>Calls repeated after a transient failure.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    internal void Fault() => Interlocked.Increment(ref _faults);

    internal void Delay() => Interlocked.Increment(ref _delays);

    internal void Retry() => Interlocked.Increment(ref _retries);
}

/// <summary>
/// The policies every host puts around its blob store and bus: retries with exponential backoff and jitter for
/// transient failures (I/O errors, timeouts), and — in chaos mode only — faults and latency injected underneath, with
/// Polly's chaos strategies, to prove the pipeline survives them. Conflicts, lost locks and bad input are never retried
/// here: the stages handle them.
/// </summary>
public static class PortPolicies
{
    /// <summary>Attempts per call before a transient failure is passed on (to the message pump, which redelivers). <value>8</value>.</summary>
    public const int MaxAttempts = 8;

    /// <summary>Whether <paramref name="exception"/> is worth repeating the same call for.</summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        BlobConflictException or MessageLockLostException or OperationCanceledException => false,
        FileNotFoundException or DirectoryNotFoundException or PathTooLongException or InvalidDataException => false,
        IOException or TimeoutException => true,
        _ => false,
    };

    /// <summary>Retries for transient failures: up to <see cref="MaxAttempts"/> attempts, 20 ms doubling with jitter.</summary>
    public static ResiliencePipeline Retry(PortPolicyCounters counters, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(counters);
        var builder = new ResiliencePipelineBuilder { TimeProvider = clock ?? TimeProvider.System };
        return builder.AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
            MaxRetryAttempts = MaxAttempts - 1,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(20),
            MaxDelay = TimeSpan.FromSeconds(2),
            OnRetry = _ =>
            {
                counters.Retry();
                PipelineTracing.PortRetries.Add(1);
                return ValueTask.CompletedTask;
            },
        }).Build();
    }

    /// <summary>Chaos: faults and latency injected at the given rates (Polly's chaos strategies).</summary>
    public static ResiliencePipeline Chaos(ChaosOptions chaos, PortPolicyCounters counters)
    {
        ArgumentNullException.ThrowIfNull(chaos);
        ArgumentNullException.ThrowIfNull(counters);
        return new ResiliencePipelineBuilder()
            .AddChaosLatency(new ChaosLatencyStrategyOptions
            {
                InjectionRate = chaos.LatencyRate,
                Latency = chaos.Latency,
                OnLatencyInjected = _ =>
                {
                    counters.Delay();
                    return ValueTask.CompletedTask;
                },
            })
            .AddChaosFault(new ChaosFaultStrategyOptions
            {
                InjectionRate = chaos.FaultRate,
                FaultGenerator = new FaultGenerator().AddException(() => new InjectedFaultException()),
                OnFaultInjected = _ =>
                {
                    counters.Fault();
                    PipelineTracing.ChaosFaults.Add(1);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    /// <summary>Wraps a blob store and a bus: chaos (when <paramref name="chaos"/> is set) underneath, retries on top.</summary>
    public static (IBlobStore Blobs, IMessageBus Bus) Wrap(IBlobStore blobs, IMessageBus bus, ChaosOptions? chaos, PortPolicyCounters counters, TimeProvider? clock = null)
    {
        if (chaos is not null)
        {
            var injected = Chaos(chaos, counters);
            blobs = new PolicyBlobStore(blobs, injected);
            bus = new PolicyMessageBus(bus, injected);
        }

        var retry = Retry(counters, clock);
        return (new PolicyBlobStore(blobs, retry), new PolicyMessageBus(bus, retry));
    }
}

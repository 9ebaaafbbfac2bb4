using Serverless.Core.Naming;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Dispatch;
using Serverless.Embedded.Messaging;
using Serverless.Embedded.Triggers;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Resilience;
using Serverless.Core.Ports;

namespace Serverless.Cli.Pipeline;

/// <summary>
/// The pipeline on embedded parts in one folder (<c>--home</c>, default <c>.tune</c>): the folder is the storage
/// account (<c>datasets/</c>, <c>base-models/</c>, <c>jobs/</c>, <c>model-registry/</c>…), <c>bus.db</c> the broker,
/// and trainers run as child processes of <c>tune-trainer</c>. Pipeline activities are recorded, so traces propagate.
/// </summary>
internal sealed class EmbeddedPipeline : IPipelineParts
{
    private readonly IDisposable _tracing = Serverless.Pipeline.PipelineTracing.Listen();

    /// <param name="home">The folder.</param>
    /// <param name="maxConcurrentJobs">Trainers at once.</param>
    /// <param name="clock">The clock (tests use a fake one).</param>
    /// <param name="chaos">Chaos mode for the blob and bus calls of this host and its trainers; by default from <c>TUNE_CHAOS</c>.</param>
    /// <param name="decorate">Wraps the ports the stages see, after retries (tests inject crashes with it).</param>
    /// <param name="configure">Adjusts the stages' settings (lock duration, timeouts).</param>
    /// <param name="trainerVariables">More environment variables for the trainers (<c>TUNE_MEMORY_LIMIT</c>).</param>
    public EmbeddedPipeline(string home, int maxConcurrentJobs = 1, TimeProvider? clock = null, ChaosOptions? chaos = null,
        Func<(IBlobStore Blobs, IMessageBus Bus), (IBlobStore Blobs, IMessageBus Bus)>? decorate = null, Func<PipelineOptions, PipelineOptions>? configure = null,
        IReadOnlyDictionary<string, string>? trainerVariables = null)
    {
        Home = Path.GetFullPath(home);
        Blobs = new FolderBlobStore(Home);
        Bus = new SqliteMessageBus(Path.Combine(Home, "bus.db"), clock);
        chaos ??= ChaosOptions.FromEnvironment(Environment.GetEnvironmentVariable);
        var ports = PortPolicies.Wrap(Blobs, Bus, chaos, Counters, clock);
        ports = decorate?.Invoke(ports) ?? ports;
        var (executable, arguments) = TrainerCommand(Home);
        var trainerEnvironment = chaos is null ? new Dictionary<string, string>() : new Dictionary<string, string>
        {
            [ChaosOptions.Variable] = chaos.FaultRate.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [ChaosOptions.Variable + "_LATENCY_MS"] = ((int)chaos.Latency.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (Serverless.Model.NativeRuntime.TrainerMallocTunables is { } tunables)
        {
            trainerEnvironment["GLIBC_TUNABLES"] = tunables;   // malloc keeps freed memory from the trainer's start
        }

        foreach (var (name, value) in trainerVariables ?? new Dictionary<string, string>())
        {
            trainerEnvironment[name] = value;
        }

        Dispatcher = new ProcessJobDispatcher(executable, arguments, (job, code, outOfMemory) => _ = Runtime!.TrainerExitedAsync(job, code, outOfMemory), environment: trainerEnvironment);
        var options = new PipelineOptions
        {
            WorkDirectory = Path.Combine(Home, "work"),
            MaxConcurrentJobs = maxConcurrentJobs,
            // A child process starts in milliseconds: a claim two minutes old belongs to a host that died.
            StartTimeout = TimeSpan.FromMinutes(2),
        };
        Runtime = new PipelineRuntime(ports.Blobs, ports.Bus, Dispatcher, clock ?? TimeProvider.System, configure?.Invoke(options) ?? options);
        Watcher = new DatasetWatcher(ports.Blobs,
            (name, etag, ct) => Runtime.Ingest.HandleAsync(new Serverless.Pipeline.Ingest.DatasetUploaded(name, etag), ct),
            Path.Combine(Home, Containers.Datasets));
    }

    public string Home { get; }

    /// <summary>Retries and injected faults of this host's blob and bus calls.</summary>
    public PortPolicyCounters Counters { get; } = new();

    public string Location => Home;

    /// <summary>The folder store itself, without retries or chaos; the stages use <see cref="PipelineRuntime.Blobs"/>.</summary>
    public FolderBlobStore Blobs { get; }

    /// <summary>The broker itself, without retries or chaos; the stages use <see cref="PipelineRuntime.Bus"/>.</summary>
    public SqliteMessageBus Bus { get; }

    Serverless.Core.Ports.IBlobStore IPipelineParts.Blobs => Blobs;

    Serverless.Core.Ports.IMessageBus IPipelineParts.Bus => Bus;

    public ProcessJobDispatcher Dispatcher { get; }

    public PipelineRuntime Runtime { get; }

    public DatasetWatcher Watcher { get; }

    /// <summary>Runs every stage and the dataset watcher until cancelled.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => Task.WhenAll(
        Runtime.RunStagesAsync(TimeSpan.FromMilliseconds(200), cancellationToken),
        Watcher.RunAsync(TimeSpan.FromSeconds(1), cancellationToken));

    /// <summary>How to start a trainer: the <c>tune-trainer</c> program shipped beside <c>tune</c>.</summary>
    private static (string Executable, IReadOnlyList<string> Arguments) TrainerCommand(string home)
    {
        var trainer = Serverless.Model.FineTuning.ProcessCommand.Trainer(Path.GetDirectoryName(typeof(EmbeddedPipeline).Assembly.Location)!);
        return (trainer.Executable, [.. trainer.Arguments, "--home", home]);
    }

    /// <summary>
    /// Stops the watcher and the trainers; each stopped trainer's job is reported failed-but-retryable before this
    /// returns (not left to the exit callback, which a closing process may never run), so the next <c>tune up</c>
    /// resumes it from its checkpoint.
    /// </summary>
    public void Dispose()
    {
        Watcher.Dispose();
        var running = Dispatcher.ProcessIds.Keys.ToList();
        Dispatcher.Dispose();
        foreach (var job in running)
        {
            try
            {
                Runtime.TrainerExitedAsync(job, StoppedExitCode).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException)
            {
                Console.Error.WriteLine($"tune: could not record that the trainer of {job} was stopped ({e.Message}); the next `tune up` retries it once its trainer watch finds the run silent (10 min).");
            }
        }

        _tracing.Dispose();
    }

    /// <summary>The exit code reported for a trainer stopped because its host stopped (SIGTERM's 128 + 15).</summary>
    public const int StoppedExitCode = 143;
}

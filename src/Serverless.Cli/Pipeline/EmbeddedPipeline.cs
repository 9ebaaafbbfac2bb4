using Serverless.Core.Naming;
using Serverless.Embedded.Blobs;
using Serverless.Embedded.Dispatch;
using Serverless.Embedded.Messaging;
using Serverless.Embedded.Triggers;
using Serverless.Pipeline.Hosting;
using Serverless.Pipeline.Messaging;

namespace Serverless.Cli.Pipeline;

/// <summary>
/// The pipeline on embedded parts in one folder (<c>--home</c>, default <c>.tune</c>): the folder is the storage
/// account (<c>datasets/</c>, <c>base-models/</c>, <c>jobs/</c>, <c>model-registry/</c>…), <c>bus.db</c> the broker,
/// and trainers run as child processes of <c>tune-trainer</c>. Pipeline activities are recorded, so traces propagate.
/// </summary>
internal sealed class EmbeddedPipeline : IPipelineParts
{
    private readonly IDisposable _tracing = Serverless.Pipeline.PipelineTracing.Listen();

    public EmbeddedPipeline(string home, int maxConcurrentJobs = 1, TimeProvider? clock = null)
    {
        Home = Path.GetFullPath(home);
        Blobs = new FolderBlobStore(Home);
        Bus = new SqliteMessageBus(Path.Combine(Home, "bus.db"), clock);
        var (executable, arguments) = TrainerCommand(Home);
        Dispatcher = new ProcessJobDispatcher(executable, arguments, (job, code) => _ = Runtime!.TrainerExitedAsync(job, code));
        Runtime = new PipelineRuntime(Blobs, Bus, Dispatcher, clock ?? TimeProvider.System,
            new PipelineOptions { WorkDirectory = Path.Combine(Home, "work"), MaxConcurrentJobs = maxConcurrentJobs });
        Watcher = new DatasetWatcher(Blobs,
            (name, etag, ct) => Runtime.Ingest.HandleAsync(new Serverless.Pipeline.Ingest.DatasetUploaded(name, etag), ct),
            Path.Combine(Home, Containers.Datasets));
    }

    public string Home { get; }

    public string Location => Home;

    public FolderBlobStore Blobs { get; }

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
        var directory = Path.GetDirectoryName(typeof(EmbeddedPipeline).Assembly.Location)!;
        var apphost = Path.Combine(directory, OperatingSystem.IsWindows() ? "tune-trainer.exe" : "tune-trainer");
        return File.Exists(apphost)
            ? (apphost, ["--home", home])
            : ("dotnet", [Path.Combine(directory, "tune-trainer.dll"), "--home", home]);
    }

    public void Dispose()
    {
        Watcher.Dispose();
        Dispatcher.Dispose();
        _tracing.Dispose();
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Ingest;
using Serverless.Pipeline.JobStatus;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Schedule;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Hosting;

/// <summary>
/// Every stage wired over a set of ports: what a host (<c>tune up</c>, the Service Bus worker, the trainer program)
/// needs to run the stages it hosts. Knows no implementation of any port.
/// </summary>
public sealed class PipelineRuntime
{
    /// <summary>Wires the stages.</summary>
    public PipelineRuntime(IBlobStore blobs, IMessageBus bus, IJobDispatcher dispatcher, TimeProvider clock, PipelineOptions options, ILoggerFactory? logging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Logging = logging ?? NullLoggerFactory.Instance;
        Blobs = blobs;
        Dispatcher = dispatcher;
        Clock = clock;
        Options = options;
        Bus = new PipelineBus(bus, clock);
        Jobs = new JobStore(blobs);
        var files = new LocalFiles(blobs);
        var specs = new SpecReader(blobs);
        Registry = new ModelRegistry(blobs, files, clock);
        var models = new ModelResolver(files, Registry, options);
        var dispatch = new JobDispatch(Jobs, dispatcher, Bus, options, Logging.CreateLogger<JobDispatch>());
        Ingest = new DatasetUploadedHandler(Bus, specs, Logging.CreateLogger<DatasetUploadedHandler>());
        Prepare = new FineTuneRequestedHandler(blobs, Jobs, specs, models, files, dispatch, Bus, options, Logging.CreateLogger<FineTuneRequestedHandler>());
        Publish = new TrainingEventsPublisherHandler(Jobs, Registry, Bus, options, Logging.CreateLogger<TrainingEventsPublisherHandler>());
        Status = new TrainingEventsStatusHandler(Jobs, clock);
        Schedule = new RetrainOnScheduleHandler(blobs, specs, Jobs, Bus, Logging.CreateLogger<RetrainOnScheduleHandler>());
        Api = new Api.PipelineApi(Jobs, Registry, blobs, Bus);
    }

    /// <summary>The HTTP API's logic.</summary>
    public Api.PipelineApi Api { get; }

    /// <summary>Blob storage.</summary>
    public IBlobStore Blobs { get; }

    /// <summary>Starts and watches trainers.</summary>
    public IJobDispatcher Dispatcher { get; }

    /// <summary>The bus, with the pipeline's conventions.</summary>
    public PipelineBus Bus { get; }

    /// <summary>The clock.</summary>
    public TimeProvider Clock { get; }

    /// <summary>Settings.</summary>
    public PipelineOptions Options { get; }

    /// <summary>Loggers.</summary>
    public ILoggerFactory Logging { get; }

    /// <summary>Job documents.</summary>
    public JobStore Jobs { get; }

    /// <summary>The model registry.</summary>
    public ModelRegistry Registry { get; }

    /// <summary>Ingest.</summary>
    public DatasetUploadedHandler Ingest { get; }

    /// <summary>Prepare + Dispatch.</summary>
    public FineTuneRequestedHandler Prepare { get; }

    /// <summary>Publish.</summary>
    public TrainingEventsPublisherHandler Publish { get; }

    /// <summary>Job status.</summary>
    public TrainingEventsStatusHandler Status { get; }

    /// <summary>Schedule.</summary>
    public RetrainOnScheduleHandler Schedule { get; }

    /// <summary>
    /// The bus-triggered stages — Prepare+Dispatch, Publish, Job status — each bound to its row of
    /// <see cref="StageEntities"/>: what every host runs, with its own receiver around it.
    /// </summary>
    public IReadOnlyList<StageMessage> StageMessages() =>
    [
        Stage(StageEntities.Prepare, (e, ct) => Prepare.HandleAsync(e.DataAs<FineTuneRequested>(), ct)),
        Stage(StageEntities.Publish, Publish.HandleAsync),
        Stage(StageEntities.JobStatus, Status.HandleAsync),
    ];

    private StageMessage Stage(StageEntity entity, Func<CloudEvent, CancellationToken, Task> handler) =>
        new(entity.Entity, handler, Logging.CreateLogger(entity.Stage), entity.Tracing, Options.Entities.MaxDeliveryCount);

    /// <summary>The embedded host's pumps for <see cref="StageMessages"/>.</summary>
    public IReadOnlyList<MessagePump> Pumps() => [.. StageMessages().Select(stage => new MessagePump(Bus.Bus, stage))];

    /// <summary>Runs the bus-triggered stages, the schedule and the trainer watch until cancelled.</summary>
    public async Task RunStagesAsync(TimeSpan idle, CancellationToken cancellationToken)
    {
        await Bus.EnsureTopologyAsync(Options.Entities, cancellationToken);
        var tasks = Pumps().Select(p => p.RunAsync(idle, cancellationToken)).ToList();
        tasks.Add(RunScheduleAsync(cancellationToken));
        tasks.Add(RunTrainerWatchAsync(cancellationToken));
        await Task.WhenAll(tasks);
    }

    /// <summary>The trainer's exit code when it failed and published <c>TrainingFailed</c> itself.</summary>
    public const int ReportedFailureExitCode = 2;

    /// <summary>Reports a trainer that exited with an error without publishing TrainingFailed (killed, crashed).</summary>
    public Task TrainerExitedAsync(string jobId, int exitCode) =>
        ReportLostTrainerAsync(jobId, null, $"the trainer exited with code {exitCode}", exitCode == ReportedFailureExitCode);

    /// <summary>
    /// The trainer watch (every <see cref="PipelineOptions.WatchInterval"/> while the stages run; a timer in Azure):
    /// a job whose trainer run the dispatcher reports failed, or does not know and that has shown no sign of life
    /// (progress, state change) for <see cref="PipelineOptions.HeartbeatTimeout"/>, is reported as a retryable
    /// <c>TrainingFailed</c>, so Publish resumes it from its checkpoint. Catches what no exit callback can: a host that
    /// died with its trainers, an execution that vanished. Returns the jobs reported.
    /// </summary>
    public async Task<IReadOnlyList<string>> WatchTrainersAsync(CancellationToken cancellationToken = default)
    {
        var reported = new List<string>();
        var now = Clock.GetUtcNow();
        await foreach (var job in Jobs.ListActiveAsync(cancellationToken))
        {
            if (job.State is not (JobState.Dispatched or JobState.Running) || job.Execution is not { } execution || Dispatch.JobDispatch.IsClaim(execution))
            {
                continue;
            }

            var status = await Dispatcher.GetStatusAsync(execution, cancellationToken);
            var lastSign = new[] { job.Progress?.At ?? DateTimeOffset.MinValue, job.History[^1].At }.Max();
            var reason = status switch
            {
                ExecutionStatus.Failed => $"the trainer run {execution} failed",
                ExecutionStatus.Unknown when now - lastSign >= Options.HeartbeatTimeout =>
                    $"no sign of life from trainer run {execution} for {(now - lastSign).TotalMinutes:F1} min, and its dispatcher does not know it",
                _ => null,
            };
            if (reason is not null && await ReportLostTrainerAsync(job.JobId, execution, reason, reportedItself: false))
            {
                Logging.CreateLogger("TrainerWatch").TrainerLost(job.JobId, reason);
                reported.Add(job.JobId);
            }
        }

        return reported;
    }

    private async Task<bool> ReportLostTrainerAsync(string jobId, string? execution, string reason, bool reportedItself)
    {
        var found = await Jobs.GetAsync(jobId);
        if (reportedItself || found is not { } current || current.Job.State is not (JobState.Dispatched or JobState.Running)
            || current.Job.Execution is null || (execution is not null && current.Job.Execution != execution))
        {
            return false;
        }

        await Bus.PublishAsync(Entities.TrainingEvents,
            new TrainingFailed(current.Job.Model, jobId, reason, Retryable: true),
            PipelineBus.StableId(jobId, nameof(TrainingFailed), current.Job.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            "/serverless/dispatch");
        return true;
    }

    /// <summary>
    /// Runs <see cref="WatchTrainersAsync"/> every <see cref="PipelineOptions.WatchInterval"/> until cancelled (the
    /// embedded host and the Azure worker both). A round that fails — storage, the broker or ARM failing past their
    /// retries, an unreadable job document — is logged and the next round tries again: the watch never stops early.
    /// </summary>
    public async Task RunTrainerWatchAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Options.WatchInterval, Clock, cancellationToken);
                await WatchTrainersAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Logging.CreateLogger("TrainerWatch").TrainerWatchFailed(e);
            }
        }
    }

    private async Task RunScheduleAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using (PipelineTracing.Schedule.StartActivity("RetrainOnSchedule"))
                {
                    await Schedule.HandleAsync(Clock.GetUtcNow(), cancellationToken);
                }

                var now = Clock.GetUtcNow();
                var nextMinute = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, TimeSpan.Zero).AddMinutes(1);
                await Task.Delay(nextMinute - now + TimeSpan.FromMilliseconds(50), Clock, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Logging.CreateLogger("Schedule").ScheduleFailed(e);
                await Task.Delay(TimeSpan.FromSeconds(5), Clock, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }
}

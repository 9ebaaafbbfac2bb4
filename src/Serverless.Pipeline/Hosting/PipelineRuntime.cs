using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Jobs;
using Serverless.Core.Ports;
using Serverless.Pipeline.Api;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Ingest;
using Serverless.Pipeline.JobStatus;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Prepare;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Schedule;

namespace Serverless.Pipeline.Hosting;

/// <summary>
/// Every stage over one set of ports, each registered the way it registers itself in any host
/// (<see cref="PipelineCoreRegistration.AddPipelineCore"/>, then <c>AddIngest</c>, <c>AddPrepare</c>, <c>AddPublish</c>,
/// <c>AddJobStatus</c>, <c>AddSchedule</c>, <c>AddPipelineApi</c>, <c>AddTrainerWatch</c>), plus the loops the
/// embedded host runs them with (<c>tune up</c>, the tests). The Azure hosts register only the stages they host.
/// Knows no implementation of any port.
/// </summary>
public sealed class PipelineRuntime
{
    private readonly ServiceProvider _services;

    /// <summary>Wires every stage over the ports.</summary>
    public PipelineRuntime(IBlobStore blobs, IMessageBus bus, IJobDispatcher dispatcher, TimeProvider clock, PipelineOptions options, ILoggerFactory? logging = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton(blobs ?? throw new ArgumentNullException(nameof(blobs)));
        services.AddSingleton(bus ?? throw new ArgumentNullException(nameof(bus)));
        services.AddSingleton(dispatcher ?? throw new ArgumentNullException(nameof(dispatcher)));
        services.AddSingleton(clock ?? throw new ArgumentNullException(nameof(clock)));
        services.AddSingleton(logging ?? NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddPipelineCore(options).AddIngest().AddPrepare().AddPublish().AddJobStatus().AddSchedule().AddPipelineApi().AddTrainerWatch();
        _services = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }

    private T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    /// <summary>The HTTP API's logic.</summary>
    public PipelineApi Api => Get<PipelineApi>();

    /// <summary>Blob storage.</summary>
    public IBlobStore Blobs => Get<IBlobStore>();

    /// <summary>Starts and watches trainers.</summary>
    public IJobDispatcher Dispatcher => Get<IJobDispatcher>();

    /// <summary>The bus, with the pipeline's conventions.</summary>
    public PipelineBus Bus => Get<PipelineBus>();

    /// <summary>The clock.</summary>
    public TimeProvider Clock => Get<TimeProvider>();

    /// <summary>Settings.</summary>
    public PipelineOptions Options => Get<PipelineOptions>();

    /// <summary>Loggers.</summary>
    public ILoggerFactory Logging => Get<ILoggerFactory>();

    /// <summary>Job documents.</summary>
    public JobStore Jobs => Get<JobStore>();

    /// <summary>The model registry.</summary>
    public ModelRegistry Registry => Get<ModelRegistry>();

    /// <summary>Ingest.</summary>
    public DatasetUploadedHandler Ingest => Get<DatasetUploadedHandler>();

    /// <summary>Prepare + Dispatch.</summary>
    public FineTuneRequestedHandler Prepare => Get<FineTuneRequestedHandler>();

    /// <summary>Dispatch (starting a trainer for a prepared job).</summary>
    public JobDispatch Dispatch => Get<JobDispatch>();

    /// <summary>Publish.</summary>
    public TrainingEventsPublisherHandler Publish => Get<TrainingEventsPublisherHandler>();

    /// <summary>Job status.</summary>
    public TrainingEventsStatusHandler Status => Get<TrainingEventsStatusHandler>();

    /// <summary>Schedule.</summary>
    public RetrainOnScheduleHandler Schedule => Get<RetrainOnScheduleHandler>();

    /// <summary>The trainer watch.</summary>
    public TrainerWatch Watch => Get<TrainerWatch>();

    /// <summary>The bus-triggered stages — Prepare+Dispatch, Publish, Job status — on the settle-and-trace path every host runs.</summary>
    public IReadOnlyList<StageMessage> StageMessages() => [.. _services.GetServices<StageBinding>().Select(s => s.Message(Logging, Options))];

    /// <summary>The embedded host's pumps for <see cref="StageMessages"/>.</summary>
    public IReadOnlyList<MessagePump> Pumps() => [.. StageMessages().Select(stage => new MessagePump(Bus.Bus, stage))];

    /// <summary>Retention (finished jobs' shards and checkpoints).</summary>
    public Retention.RetentionSweep Retention => Get<Retention.RetentionSweep>();

    /// <summary>Runs the bus-triggered stages, the schedule, the trainer watch and the retention sweep until cancelled.</summary>
    public async Task RunStagesAsync(TimeSpan idle, CancellationToken cancellationToken)
    {
        await Bus.EnsureTopologyAsync(Options.Entities, cancellationToken);
        var tasks = Pumps().Select(p => p.RunAsync(idle, cancellationToken)).ToList();
        tasks.Add(Get<ScheduleTimer>().RunAsync(cancellationToken));
        tasks.Add(Watch.RunAsync(cancellationToken));
        tasks.Add(Retention.RunAsync(cancellationToken));
        await Task.WhenAll(tasks);
    }

    /// <summary>One round of the trainer watch (see <see cref="TrainerWatch"/>); returns the jobs reported.</summary>
    public Task<IReadOnlyList<string>> WatchTrainersAsync(CancellationToken cancellationToken = default) => Watch.WatchAsync(cancellationToken);

    /// <summary>Reports a trainer that exited with an error without publishing TrainingFailed (killed, crashed).</summary>
    public Task TrainerExitedAsync(string jobId, int exitCode, bool outOfMemory = false) => Watch.TrainerExitedAsync(jobId, exitCode, outOfMemory);
}

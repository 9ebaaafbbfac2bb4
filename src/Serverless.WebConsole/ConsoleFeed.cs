using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Api;
using Serverless.Pipeline.Hosting;

namespace Serverless.WebConsole;

/// <summary>One live update for the pages: <c>job</c> (a job summary changed), <c>loss</c> (a training point) or <c>model-event</c>.</summary>
/// <param name="Kind">The Server-Sent Events <c>event:</c> name.</param>
/// <param name="Data">The JSON payload.</param>
internal sealed record FeedItem(string Kind, string Data);

/// <summary>
/// What the pages watch live, gathered once for every open page: the live jobs (through the job index, so the cost
/// follows live jobs, not history), every training point from <c>training-events</c> and every model event from
/// <c>model-events</c>, each through the console's own subscription (so it misses nothing the stages handle, and
/// takes nothing from them). Loss points are kept per job (bounded) so a page opened mid-run draws the curve so far.
/// </summary>
internal sealed class ConsoleFeed(PipelineRuntime runtime)
{
    /// <summary>The console's subscription on <c>training-events</c> and on <c>model-events</c>.</summary>
    public const string Subscription = "console";

    private const int MaxPointsPerSeries = 4000;
    private const int MaxJobsKept = 64;
    private const int MaxEventsKept = 200;

    private readonly ConcurrentDictionary<Channel<FeedItem>, byte> _clients = new();
    private readonly ConcurrentDictionary<string, JobSeries> _series = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<JsonNode> _events = new();
    private readonly Dictionary<string, string> _sent = new(StringComparer.Ordinal);

    private static string TrainingEntity => Entities.Subscription(Entities.TrainingEvents, Subscription);

    private static string ModelEventsEntity => Entities.Subscription(Entities.ModelEvents, Subscription);

    /// <summary>Creates the console's subscriptions (idempotent).</summary>
    public async Task EnsureSubscriptionsAsync(CancellationToken cancellationToken)
    {
        var training = new SubscriptionFilter(new Dictionary<string, IReadOnlyList<string>> { [MessageProperties.Type] = [nameof(TrainingProgress)] });
        await runtime.Bus.Bus.EnsureSubscriptionAsync(Entities.TrainingEvents, Subscription, training, cancellationToken: cancellationToken);
        await runtime.Bus.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, Subscription, SubscriptionFilter.All, cancellationToken: cancellationToken);
    }

    /// <summary>Polls jobs and both subscriptions until cancelled, pushing what changed to every open page.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await PollJobsAsync(cancellationToken);
                await DrainTrainingAsync(cancellationToken);
                await DrainModelEventsAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Storage or the broker failed past the ports' retries: the page keeps what it has, the next pass catches up.
                Console.Error.WriteLine($"tune up: the console's live feed missed a pass ({e.Message}); it tries again.");
            }

            try
            {
                await Task.Delay(interval, runtime.Clock, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>A page's stream: first the live jobs as they are now, then every change.</summary>
    public Channel<FeedItem> Subscribe()
    {
        var channel = Channel.CreateBounded<FeedItem>(new BoundedChannelOptions(2000) { FullMode = BoundedChannelFullMode.DropOldest });
        lock (_sent)
        {
            foreach (var summary in _sent.Values)
            {
                channel.Writer.TryWrite(new FeedItem("job", summary));
            }

            _clients[channel] = 0;
        }

        return channel;
    }

    /// <summary>Stops feeding a closed page.</summary>
    public void Unsubscribe(Channel<FeedItem> channel)
    {
        _clients.TryRemove(channel, out _);
        channel.Writer.TryComplete();
    }

    /// <summary>The loss points seen live for a job: phase → train and validation points <c>[step, loss]</c>.</summary>
    public JsonObject? Series(string jobId) => _series.TryGetValue(jobId, out var series) ? series.ToJson() : null;

    /// <summary>The latest model events (newest last), as CloudEvents JSON.</summary>
    public JsonArray RecentEvents() => new([.. _events.Select(e => e.DeepClone())]);

    private void Broadcast(FeedItem item)
    {
        foreach (var client in _clients.Keys)
        {
            client.Writer.TryWrite(item);
        }
    }

    private async Task PollJobsAsync(CancellationToken cancellationToken)
    {
        var seen = new List<JobDocument>();
        await foreach (var job in runtime.Jobs.ListActiveAsync(cancellationToken))
        {
            seen.Add(job);
        }

        // Jobs that were live last pass and are not now ended in between: read them once more to show how.
        List<string> previous;
        lock (_sent)
        {
            previous = [.. _sent.Keys.Where(id => seen.All(j => j.JobId != id))];
        }

        foreach (var id in previous)
        {
            if (await runtime.Jobs.GetAsync(id, cancellationToken) is { } found)
            {
                seen.Add(found.Job);
            }
            else
            {
                lock (_sent)
                {
                    _sent.Remove(id);   // gone (removed by hand): nothing more to show
                }
            }
        }

        lock (_sent)
        {
            foreach (var job in seen)
            {
                var summary = PipelineApi.Summary(job).ToJsonString();
                if (!_sent.TryGetValue(job.JobId, out var last) || last != summary)
                {
                    Broadcast(new FeedItem("job", summary));
                }

                if (JobStates.IsTerminal(job.State))
                {
                    _sent.Remove(job.JobId);
                }
                else
                {
                    _sent[job.JobId] = summary;
                }
            }
        }
    }

    private async Task DrainTrainingAsync(CancellationToken cancellationToken)
    {
        var bus = runtime.Bus.Bus;
        IReadOnlyList<ReceivedMessage> messages;
        do
        {
            messages = await bus.ReceiveAsync(TrainingEntity, 100, cancellationToken);
            foreach (var message in messages)
            {
                if (TryParse(message.Body) is { Type: nameof(TrainingProgress) } e)
                {
                    var p = e.DataAs<TrainingProgress>();
                    var series = _series.GetOrAdd(p.JobId, _ => new JobSeries());
                    series.Add(p.Phase, p.Step, p.Loss, p.ValidationLoss);
                    Broadcast(new FeedItem("loss", new JsonObject
                    {
                        ["jobId"] = p.JobId, ["phase"] = p.Phase, ["step"] = p.Step, ["loss"] = p.Loss, ["validationLoss"] = p.ValidationLoss,
                    }.ToJsonString()));
                    Trim();
                }

                await bus.CompleteAsync(TrainingEntity, message, cancellationToken);
            }
        }
        while (messages.Count > 0);
    }

    private async Task DrainModelEventsAsync(CancellationToken cancellationToken)
    {
        var bus = runtime.Bus.Bus;
        IReadOnlyList<ReceivedMessage> messages;
        do
        {
            messages = await bus.ReceiveAsync(ModelEventsEntity, 100, cancellationToken);
            foreach (var message in messages)
            {
                if (JsonNode.Parse(message.Body) is JsonObject cloudEvent)
                {
                    _events.Enqueue(cloudEvent);
                    while (_events.Count > MaxEventsKept && _events.TryDequeue(out _))
                    {
                    }

                    Broadcast(new FeedItem("model-event", cloudEvent.ToJsonString()));

                    // A job can begin and end between two polls (a dataset refused at once): its event shows how it ended.
                    if (cloudEvent["data"]?["jobId"] is JsonValue id && id.TryGetValue<string>(out var jobId) && await runtime.Jobs.GetAsync(jobId, cancellationToken) is { } ended)
                    {
                        Broadcast(new FeedItem("job", PipelineApi.Summary(ended.Job).ToJsonString()));
                    }
                }

                await bus.CompleteAsync(ModelEventsEntity, message, cancellationToken);
            }
        }
        while (messages.Count > 0);
    }

    private static CloudEvent? TryParse(string body)
    {
        try
        {
            return CloudEvent.Parse(body);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Keeps the series of the most recently updated jobs only.</summary>
    private void Trim()
    {
        if (_series.Count <= MaxJobsKept)
        {
            return;
        }

        foreach (var stale in _series.OrderBy(s => s.Value.UpdatedTicks).Take(_series.Count - MaxJobsKept).Select(s => s.Key).ToList())
        {
            _series.TryRemove(stale, out _);
        }
    }

    /// <summary>One job's points, per phase (<c>candidate</c>, <c>scratch</c>).</summary>
    private sealed class JobSeries
    {
        private static long _updates;
        private readonly Dictionary<string, (List<double[]> Train, List<double[]> Validation)> _phases = new(StringComparer.Ordinal);

        public long UpdatedTicks { get; private set; }

        public void Add(string phase, int step, double loss, double? validation)
        {
            lock (_phases)
            {
                if (!_phases.TryGetValue(phase, out var lists))
                {
                    _phases[phase] = lists = ([], []);
                }

                if (lists.Train.Count > 0 && lists.Train[^1][0] >= step)
                {
                    // A resumed run reports steps again from its checkpoint: keep the newest account of each step.
                    lists.Train.RemoveAll(p => p[0] >= step);
                    lists.Validation.RemoveAll(p => p[0] >= step);
                }

                lists.Train.Add([step, loss]);
                if (validation is { } v)
                {
                    lists.Validation.Add([step, v]);
                }

                if (lists.Train.Count > MaxPointsPerSeries)
                {
                    // Keep every other point of the older half: the curve's shape stays, memory stays bounded.
                    var half = lists.Train.Count / 2;
                    var thinned = lists.Train.Take(half).Where((_, i) => i % 2 == 0).Concat(lists.Train.Skip(half)).ToList();
                    lists.Train.Clear();
                    lists.Train.AddRange(thinned);
                }

                UpdatedTicks = Interlocked.Increment(ref _updates);
            }
        }

        public JsonObject ToJson()
        {
            lock (_phases)
            {
                var result = new JsonObject();
                foreach (var (phase, lists) in _phases)
                {
                    result[phase] = new JsonObject
                    {
                        ["train"] = new JsonArray([.. lists.Train.Select(p => (JsonNode)new JsonArray(p[0], p[1]))]),
                        ["validation"] = new JsonArray([.. lists.Validation.Select(p => (JsonNode)new JsonArray(p[0], p[1]))]),
                    };
                }

                return result;
            }
        }
    }
}

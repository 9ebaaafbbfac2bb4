using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Embedded.Messaging;
using Serverless.Pipeline.Publish;

namespace Serverless.Cli.Commands;

/// <summary>
/// <c>tune bench scale</c>: how the pipeline's cost grows with history. For each size it builds that many finished jobs
/// and registry versions in a fresh embedded home through the real code paths (job documents created and moved by
/// <see cref="JobStore"/>, versions published by <see cref="ModelRegistry"/>; no training), then measures an idle
/// <c>tune up</c> (CPU share and blob calls per minute), the listings behind <c>tune jobs</c> and <c>tune models</c>,
/// publish at version 10 and at version N of one model, one trainer-watch and one schedule pass; and the embedded
/// bus with 1, 4 and 16 concurrent receivers. A benchmark, not a test: it reports, it asserts nothing.
/// </summary>
internal static class ScaleBench
{
    private static readonly JsonSerializerOptions RegistryJson = new(CloudEvent.JsonOptions) { WriteIndented = true };

    public static JsonObject Run(IReadOnlyList<int> sizes, TimeSpan idle, int dispatchJobs, TextWriter? log)
    {
        var results = new JsonObject { ["idle_seconds"] = idle.TotalSeconds, ["sizes"] = new JsonArray() };
        if (dispatchJobs > 0)
        {
            results["dispatch"] = DispatchThroughputAsync(dispatchJobs, 2, log).GetAwaiter().GetResult();
        }

        foreach (var size in sizes)
        {
            var row = MeasureAsync(size, idle, log).GetAwaiter().GetResult();
            results["sizes"]!.AsArray().Add(row);
        }

        var bus = new JsonObject();
        foreach (var receivers in new[] { 1, 4, 16 })
        {
            var rate = BusThroughput(4000, receivers);
            bus[receivers.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Math.Round(rate);
            log?.WriteLine($"embedded bus, {receivers,2} receiver(s): {rate:N0} messages/s (send + receive + complete)");
        }

        results["bus_messages_per_second_by_receivers"] = bus;
        return results;
    }

    private static async Task<JsonObject> MeasureAsync(int size, TimeSpan idle, TextWriter? log)
    {
        var home = Path.Combine(Path.GetTempPath(), "tune-scale-" + Guid.NewGuid().ToString("N"));
        var counter = new CountingBlobStore();
        try
        {
            var models = Math.Clamp(size / 10, 10, 1000);
            var build = Stopwatch.StartNew();
            using (var builder = new EmbeddedPipeline(home))
            {
                await BuildHistoryAsync(builder, size, models);
            }

            log?.WriteLine($"{size:N0} jobs and versions over {models:N0} models: built in {build.Elapsed.TotalSeconds:F0} s");
            using var pipeline = new EmbeddedPipeline(home, decorate: ports => (counter.Wrap(ports.Blobs), ports.Bus));
            var runtime = pipeline.Runtime;
            var row = new JsonObject { ["jobs"] = size, ["versions"] = size, ["models"] = models };

            // Listings, as the commands and the console call them (warm: each once first).
            row["list_jobs_latest_50_ms"] = await TimeWarmAsync(() => runtime.Api.ListJobsAsync(limit: 50));
            row["show_job_ms"] = await TimeWarmAsync(() => runtime.Api.GetJobAsync(JobId(size - 1)));
            row["list_models_ms"] = await TimeWarmAsync(() => runtime.Api.ListModelsAsync());
            row["show_model_ms"] = await TimeWarmAsync(() => runtime.Api.GetModelAsync(Model(0)));
            row["trainer_watch_pass_ms"] = await TimeWarmAsync(() => runtime.WatchTrainersAsync());
            row["schedule_pass_ms"] = await TimeWarmAsync(() => runtime.Schedule.HandleAsync(runtime.Clock.GetUtcNow()));

            // Publish into one model: the 10th version, then (index grown to N − 1) the Nth.
            var (at10, atN, upgrade) = await PublishDepthAsync(pipeline, size);
            row["publish_at_version_10_ms"] = at10;
            row["publish_at_version_n_ms"] = atN;
            row["publish_upgrading_an_old_index_ms"] = upgrade;

            // The first retention sweep over a history built in one go sweeps all of it (a one-time cost, timed here);
            // a long-running pipeline sweeps each job once, a week after it finished.
            row["first_retention_sweep_ms"] = await TimeAsync(() => runtime.Retention.SweepAsync());
            row["retention_sweep_ms"] = await TimeAsync(() => runtime.Retention.SweepAsync());

            // Idle: every stage and the dataset watcher running, nothing to do.
            await runtime.Bus.EnsureTopologyAsync();
            GC.Collect();
            var process = Process.GetCurrentProcess();
            using var stop = new CancellationTokenSource();
            var running = pipeline.RunAsync(stop.Token);
            await Task.Delay(TimeSpan.FromSeconds(3));   // past start-up (first listings, the index marker)
            counter.Reset();
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            await Task.Delay(idle);
            process.Refresh();
            var cpu = (process.TotalProcessorTime - cpu0).TotalSeconds / wall.Elapsed.TotalSeconds;
            var calls = counter.Calls / wall.Elapsed.TotalMinutes;
            var resident = process.WorkingSet64;
            await stop.CancelAsync();
            try
            {
                await running;
            }
            catch (OperationCanceledException)
            {
            }

            // The same history under a real `tune up` process, which holds nothing but what it reads.
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            var (childCpu, childResident) = await TuneUpProcessAsync(home, TimeSpan.FromSeconds(20));
            row["tune_up_process_resident_mb"] = childResident;
            row["tune_up_process_cpu_share_of_one_core"] = childCpu;
            log?.WriteLine($"  a separate tune up process on this history: resident {childResident:N0} MB, {childCpu:P1} of one core over its first 20 s");
            row["idle_cpu_share_of_one_core"] = Math.Round(cpu, 4);
            row["idle_blob_calls_per_minute"] = Math.Round(calls);
            row["idle_blob_calls_by_kind"] = counter.ByKind();
            row["resident_mb"] = Math.Round(resident / 1048576.0);
            log?.WriteLine($"  idle tune up: {cpu:P1} of one core, {calls:N0} blob calls/min ({counter.Describe()}), resident {resident / 1048576.0:N0} MB");
            log?.WriteLine($"  tune jobs (latest 50) {row["list_jobs_latest_50_ms"]} ms, tune jobs ID {row["show_job_ms"]} ms, tune models {row["list_models_ms"]} ms, tune models NAME {row["show_model_ms"]} ms");
            log?.WriteLine($"  publish, median of five, at versions 6–10: {at10} ms, at versions {size - 4:N0}–{size:N0}: {atN} ms (the upgrade before them, trimming an index of every version: {upgrade} ms); trainer watch pass {row["trainer_watch_pass_ms"]} ms, schedule pass {row["schedule_pass_ms"]} ms, retention sweep {row["retention_sweep_ms"]} ms (the first, over the whole new history: {row["first_retention_sweep_ms"]} ms)");
            return row;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(home, recursive: true);
        }
    }

    /// <summary>
    /// <paramref name="jobs"/> datasets dropped at once for as many models, each a one-step job on the tiny base with
    /// real trainer processes, at most <paramref name="concurrent"/> at a time: jobs published per minute while the
    /// queue drains, file → dispatch p50/p99, and the resident memory of the host as the history grows.
    /// </summary>
    private static async Task<JsonObject> DispatchThroughputAsync(int jobs, int concurrent, TextWriter? log)
    {
        var home = Path.Combine(Path.GetTempPath(), "tune-drain-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var pipeline = new EmbeddedPipeline(home, maxConcurrentJobs: concurrent);
            PipelineBench.SaveTinyBase(home);
            await pipeline.Runtime.Bus.EnsureTopologyAsync();
            await pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, "bench", SubscriptionFilter.All);
            var entity = Entities.Subscription(Entities.ModelEvents, "bench");
            var spec = PipelineBench.OneStepSpec().ToJsonString();
            for (var i = 0; i < jobs; i++)
            {
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"drain-{i:D4}/{Containers.SpecFile}", new MemoryStream(Encoding.UTF8.GetBytes(spec)));
            }

            using var stop = new CancellationTokenSource();
            var running = pipeline.RunAsync(stop.Token);
            await Task.Delay(TimeSpan.FromSeconds(2));   // past start-up
            var watch = Stopwatch.StartNew();
            var written = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            for (var i = 0; i < jobs; i++)
            {
                written[$"drain-{i:D4}"] = DateTimeOffset.UtcNow;
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"drain-{i:D4}/data.jsonl", new MemoryStream(Encoding.UTF8.GetBytes(PipelineBench.Corpus(i))));
            }

            var published = 0;
            var resident = new List<double>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60 + (jobs * 30.0 / concurrent));
            while (published < jobs)
            {
                foreach (var message in await pipeline.Bus.ReceiveAsync(entity, 50))
                {
                    await pipeline.Bus.CompleteAsync(entity, message);
                    if (CloudEvent.Parse(message.Body).Type == nameof(ModelPublished) && ++published % Math.Max(1, jobs / 10) == 0)
                    {
                        resident.Add(Math.Round(Process.GetCurrentProcess().WorkingSet64 / 1048576.0));
                        log?.WriteLine($"  {published} of {jobs} published in {watch.Elapsed.TotalSeconds:F0} s, resident {resident[^1]:N0} MB");
                    }
                }

                if (DateTime.UtcNow > deadline || running.IsFaulted)
                {
                    await stop.CancelAsync();
                    await running;
                    throw new TimeoutException($"only {published} of {jobs} jobs were published in {watch.Elapsed.TotalSeconds:F0} s.");
                }

                await Task.Delay(100);
            }

            var elapsed = watch.Elapsed;
            await stop.CancelAsync();
            await running;
            var dispatch = new List<double>();
            await foreach (var job in pipeline.Runtime.Jobs.ListAsync())
            {
                dispatch.Add((job.History.First(t => t.State == JobState.Dispatched).At - written[job.Model]).TotalMilliseconds);
            }

            var row = new JsonObject
            {
                ["jobs"] = jobs, ["max_concurrent_jobs"] = concurrent, ["seconds"] = Math.Round(elapsed.TotalSeconds, 1),
                ["jobs_per_minute"] = Math.Round(jobs / elapsed.TotalMinutes, 1),
                ["file_to_dispatch_ms_p50"] = Math.Round(PipelineBench.Percentile(dispatch, 0.5)), ["file_to_dispatch_ms_p99"] = Math.Round(PipelineBench.Percentile(dispatch, 0.99)),
                ["resident_mb_by_tenth"] = new JsonArray([.. resident.Select(r => (JsonNode)r)]),
            };
            log?.WriteLine($"dispatch: {jobs} one-step jobs for {jobs} models, {concurrent} trainers at a time: {row["jobs_per_minute"]} jobs/min; file → dispatch p50 {row["file_to_dispatch_ms_p50"]} ms, p99 {row["file_to_dispatch_ms_p99"]} ms (a job waits for the queue ahead of it)");
            return row;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(home, recursive: true);
        }
    }

    /// <summary>Starts <c>tune up --no-console</c> on <paramref name="home"/>, and after <paramref name="run"/> reads its resident memory and CPU share, then stops it.</summary>
    private static async Task<(double Cpu, double ResidentMb)> TuneUpProcessAsync(string home, TimeSpan run)
    {
        var self = Environment.ProcessPath!;
        var start = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? new ProcessStartInfo(self, [typeof(ScaleBench).Assembly.Location, "up", "--home", home, "--no-console"])
            : new ProcessStartInfo(self, ["up", "--home", home, "--no-console"]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var watch = Stopwatch.StartNew();
            await Task.Delay(run);
            process.Refresh();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"tune up on the bench's history exited with {process.ExitCode}.");
            }

            return (Math.Round(process.TotalProcessorTime.TotalSeconds / watch.Elapsed.TotalSeconds, 4), Math.Round(process.WorkingSet64 / 1048576.0));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
    }

    private static string Model(int i) => $"model-{i:D4}";

    private static string JobId(int i) => $"job-{i:D6}";

    /// <summary>Finished jobs (created, then moved to published through the job store) and one version per job.</summary>
    private static async Task BuildHistoryAsync(EmbeddedPipeline pipeline, int size, int models)
    {
        var runtime = pipeline.Runtime;
        await UploadCandidateAsync(pipeline);
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        for (var i = 0; i < size; i++)
        {
            var model = Model(i % models);
            var at = start.AddMinutes(i);
            var job = new JobDocument
            {
                JobId = JobId(i), Model = model, Trigger = "schedule", TriggerKey = $"k{i}", Spec = new JsonObject { ["steps"] = 10 },
                Dataset = [new SnapshotFile($"{model}/data.jsonl", "\"e\"", 100, new string('0', 64))], DatasetHash = new string('1', 64), CreatedAt = at,
            };
            await runtime.Jobs.TryCreateAsync(job);
            await runtime.Jobs.UpdateAsync(job.JobId, j => j.MoveTo(JobState.Dispatched, at).MoveTo(JobState.Running, at).MoveTo(JobState.Completed, at.AddSeconds(30)));
            var published = await runtime.Registry.PublishAsync(model, job.JobId, "bench/candidate/", 20 - (i * 1e-4), new JsonObject { ["job"] = job.JobId }, "# card");
            await runtime.Jobs.UpdateAsync(job.JobId, j => j.MoveTo(JobState.Published, at.AddSeconds(31), $"version {published.Version}") with { Version = published.Version });
        }
    }

    private static async Task UploadCandidateAsync(EmbeddedPipeline pipeline)
    {
        foreach (var (name, text) in new[] { ("config.json", "{}"), ("model.safetensors", "weights"), ("metrics.json", "{}"), ("report.md", "# report"), ("loss.png", "png") })
        {
            await pipeline.Blobs.WriteAsync(Containers.Checkpoints, $"bench/candidate/{name}", new MemoryStream(Encoding.UTF8.GetBytes(text)));
        }
    }

    /// <summary>
    /// One model, <c>deep</c>: ten versions published, the median of versions 6–10 timed; then its index grown to
    /// N − 6 versions written as the registry wrote them before its head existed (every version in <c>index.json</c>;
    /// building them one publish at a time would cost O(N²)), version N − 5 published (the one-time upgrade: the head
    /// is trimmed, older versions written to their entries), and the median of versions N − 4 … N timed.
    /// </summary>
    private static async Task<(double At10, double AtN, double Upgrade)> PublishDepthAsync(EmbeddedPipeline pipeline, int size)
    {
        var registry = pipeline.Runtime.Registry;
        Task<PublishedVersion> Publish(int v) => registry.PublishAsync("deep", $"deep-job-{v}", "bench/candidate/", 10, new JsonObject(), "# card");
        var at10 = new List<double>();
        for (var v = 1; v <= 10; v++)
        {
            var ms = await TimeAsync(() => Publish(v));
            if (v > 5)
            {
                at10.Add(ms);
            }
        }

        if (size <= 20)
        {
            return (Median(at10), Median(at10), 0);
        }

        var now = pipeline.Runtime.Clock.GetUtcNow();
        var all = (await registry.ListVersionsAsync("deep"))!.OrderBy(v => v.Version).ToList();
        var old = new JsonObject
        {
            ["model"] = "deep",
            ["versions"] = JsonSerializer.SerializeToNode(all.Concat(Enumerable.Range(11, size - 16).Select(v => new RegistryVersion(v, $"deep-job-{v}", "ready", now, 10))).ToList(), RegistryJson),
            ["aliases"] = new JsonObject { ["latest"] = size - 6, ["champion"] = 1 },
        };
        await pipeline.Blobs.WriteAsync(Containers.Registry, "deep/index.json", new MemoryStream(Encoding.UTF8.GetBytes(old.ToJsonString(RegistryJson))));
        var upgrade = await TimeAsync(() => Publish(size - 5));
        var atN = new List<double>();
        for (var v = size - 4; v <= size; v++)
        {
            atN.Add(await TimeAsync(() => Publish(v)));
        }

        return (Median(at10), Median(atN), upgrade);
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>Milliseconds of the second of two calls: the first pays one-time costs (an index built over old history, caches).</summary>
    private static async Task<double> TimeWarmAsync<T>(Func<Task<T>> call)
    {
        await call();
        return await TimeAsync(call);
    }

    private static async Task<double> TimeAsync<T>(Func<Task<T>> call)
    {
        var watch = Stopwatch.StartNew();
        await call();
        return Math.Round(watch.Elapsed.TotalMilliseconds, 1);
    }

    /// <summary>Sends the messages, then receives (batches of 32) and completes them with that many concurrent receivers: messages per second overall.</summary>
    internal static double BusThroughput(int count, int receivers)
    {
        var dir = Path.Combine(Path.GetTempPath(), "tune-bus-" + Guid.NewGuid().ToString("N"));
        try
        {
            var bus = new SqliteMessageBus(Path.Combine(dir, "bus.db"));
            bus.EnsureQueueAsync("bench").GetAwaiter().GetResult();
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                bus.SendAsync("bench", new OutgoingMessage($"m{i}", "{\"x\":1}", new Dictionary<string, string> { ["type"] = "Bench" })).GetAwaiter().GetResult();
            }

            var done = 0;
            var workers = Enumerable.Range(0, receivers).Select(_ => Task.Run(async () =>
            {
                while (Volatile.Read(ref done) < count)
                {
                    var batch = await bus.ReceiveAsync("bench", 32);
                    foreach (var message in batch)
                    {
                        await bus.CompleteAsync("bench", message);
                        Interlocked.Increment(ref done);
                    }

                    if (batch.Count == 0)
                    {
                        await Task.Yield();
                    }
                }
            })).ToArray();
            Task.WaitAll(workers);
            return count / watch.Elapsed.TotalSeconds;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Counts the stages' blob calls by kind (list, read, write, delete…).</summary>
    private sealed class CountingBlobStore
    {
        private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);

        public long Calls
        {
            get
            {
                lock (_counts)
                {
                    return _counts.Values.Sum();
                }
            }
        }

        public IBlobStore Wrap(IBlobStore inner) => new Counted(inner, this);

        public void Reset()
        {
            lock (_counts)
            {
                _counts.Clear();
            }
        }

        public JsonObject ByKind()
        {
            lock (_counts)
            {
                return new JsonObject(_counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => KeyValuePair.Create(c.Key, (JsonNode?)c.Value)));
            }
        }

        public string Describe()
        {
            lock (_counts)
            {
                return string.Join(", ", _counts.OrderByDescending(c => c.Value).Select(c => $"{c.Key} {c.Value}"));
            }
        }

        private void Add(string kind)
        {
            lock (_counts)
            {
                _counts[kind] = _counts.GetValueOrDefault(kind) + 1;
            }
        }

        private sealed class Counted(IBlobStore inner, CountingBlobStore counter) : IBlobStore
        {
            public Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default)
            {
                counter.Add("get");
                return inner.GetAsync(container, name, cancellationToken);
            }

            public Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default)
            {
                counter.Add("read");
                return inner.OpenReadAsync(container, name, cancellationToken);
            }

            public Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default)
            {
                counter.Add("write");
                return inner.WriteAsync(container, name, content, condition, cancellationToken);
            }

            public IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", CancellationToken cancellationToken = default)
            {
                counter.Add("list " + container);
                return inner.ListAsync(container, prefix, cancellationToken);
            }

            public Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default)
            {
                counter.Add("delete");
                return inner.DeleteAsync(container, name, condition, cancellationToken);
            }
        }
    }
}

using System.CommandLine;
using System.Text;
using System.Text.Json;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Publish;
using OpenTelemetry.Trace;
using Spectre.Console;

namespace Serverless.Cli.Commands;

/// <summary>The commands over the embedded pipeline: up, submit, jobs, cancel, models, events, deadletters.</summary>
internal static class PipelineCommands
{
    private static readonly JsonSerializerOptions Indented = new(CloudEvent.JsonOptions) { WriteIndented = true };

    public static Option<string> Home() => new("--home") { Description = "The embedded pipeline's folder (storage, broker, work).", DefaultValueFactory = _ => ".tune" };

    public static IEnumerable<Command> Create()
    {
        yield return Up();
        yield return Submit();
        yield return Jobs();
        yield return Cancel();
        yield return Retry();
        yield return Gc();
        yield return Models();
        yield return Events();
        yield return DeadLetters();
    }

    private static Command Up()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var concurrency = new Option<int>("--max-concurrent-jobs") { Description = "Trainers at once (at least 1).", DefaultValueFactory = _ => 1 };
        concurrency.Validators.Add(r =>
        {
            if (r.GetValue(concurrency) < 1)
            {
                r.AddError($"--max-concurrent-jobs must be at least 1 (got {r.GetValue(concurrency)}): with no trainer slot every job would wait forever.");
            }
        });
        var trace = new Option<bool>("--trace") { Description = "Print the pipeline's OpenTelemetry traces (one per dataset, across stages) to the console." };
        var chaos = new Option<double?>("--chaos")
        {
            Description = "Chaos mode: fail this share of blob and bus calls (and delay as many by 20 ms), in this host and its trainers, to watch the pipeline recover (e.g. 0.2).",
        };
        chaos.Validators.Add(r =>
        {
            if (r.GetValue(chaos) is { } rate && (rate < 0 || rate >= 1 || double.IsNaN(rate)))
            {
                r.AddError("--chaos is a share of calls between 0 and 1, such as 0.2.");
            }
        });
        var port = new Option<int>("--port") { Description = "The web console's port (0: any free port).", DefaultValueFactory = _ => Serverless.WebConsole.ConsoleOptions.DefaultPort };
        port.Validators.Add(r =>
        {
            if (r.GetValue(port) is < 0 or > 65535)
            {
                r.AddError($"--port must be between 1 and 65535, or 0 for any free port (got {r.GetValue(port)}).");
            }
        });
        var noConsole = new Option<bool>("--no-console") { Description = "Do not serve the web console." };
        var listen = new Option<string>("--listen")
        {
            Description = "The address the console listens on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface — anyone who gets the token can then use it).",
            DefaultValueFactory = _ => "127.0.0.1",
        };
        listen.Validators.Add(r =>
        {
            if (!System.Net.IPAddress.TryParse(r.GetValue(listen), out _))
            {
                r.AddError($"--listen must be an IP address such as 127.0.0.1 or 0.0.0.0 (got '{r.GetValue(listen)}').");
            }
        });
        var command = new Command("up", "Run every pipeline stage on embedded parts until Ctrl+C, and serve the web console: drop files into HOME/datasets/{model}/ (or onto the console's Data page) to train.")
        {
            home, concurrency, store, trace, chaos, port, noConsole, listen,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            if (parse.GetValue(chaos) is { } rate)
            {
                // Set for this process and inherited by every trainer it starts.
                Environment.SetEnvironmentVariable(Serverless.Pipeline.Resilience.ChaosOptions.Variable, rate.ToString(System.Globalization.CultureInfo.InvariantCulture));
                writer.WriteLine($"tune up: chaos mode — {rate:P0} of blob and bus calls fail, as many are delayed; every one is retried.");
            }

            using var tracing = parse.GetValue(trace)
                ? OpenTelemetry.Sdk.CreateTracerProviderBuilder().AddSource(Serverless.Azure.PipelineTelemetryExtensions.Sources).AddConsoleExporter().Build()
                : null;
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!, parse.GetValue(concurrency));
            writer.WriteLine(pipeline is EmbeddedPipeline local
                ? $"tune up: watching {Path.Combine(local.Home, Containers.Datasets)}/{{model}}/ — Ctrl+C to stop."
                : $"tune up: running the stages on {pipeline.Location} (Ingest is Event Grid's and the Functions app's) — Ctrl+C to stop.");
            // The console first: a taken port ends the command before any stage has started.
            await using var console = parse.GetValue(noConsole) ? null : await StartConsoleAsync(writer, pipeline,
                new Serverless.WebConsole.ConsoleOptions { Port = parse.GetValue(port), Listen = System.Net.IPAddress.Parse(parse.GetValue(listen)!) }, cancellation);
            var run = pipeline.RunAsync(cancellation);
            var shown = new Dictionary<string, string>();
            var live = new HashSet<string>();
            while (!run.IsCompleted)
            {
                // The live jobs (through the index), plus those live last round, to show how they ended: never the whole history.
                var jobs = new List<JobDocument>();
                await foreach (var job in pipeline.Runtime.Jobs.ListActiveAsync(CancellationToken.None))
                {
                    jobs.Add(job);
                }

                foreach (var ended in live.Except(jobs.Select(j => j.JobId)).ToList())
                {
                    if (await pipeline.Runtime.Jobs.GetAsync(ended, CancellationToken.None) is { } found)
                    {
                        jobs.Add(found.Job);
                    }
                }

                live = [.. jobs.Where(j => !JobStates.IsTerminal(j.State)).Select(j => j.JobId)];
                foreach (var job in jobs)
                {
                    var line = Describe(job);
                    if (!shown.TryGetValue(job.JobId, out var previous) || previous != line)
                    {
                        shown[job.JobId] = line;
                        writer.WriteLine($"{DateTimeOffset.Now:HH:mm:ss} {line}");
                    }
                }

                await Task.WhenAny(run, Task.Delay(1000, CancellationToken.None));
            }

            await run;
            return 0;
        });
        return command;
    }

    /// <summary>Serves the web console over the pipeline and prints its address with the token; a taken port is the user's to fix.</summary>
    private static async Task<Serverless.WebConsole.ConsoleServer> StartConsoleAsync(TextWriter writer, IPipelineParts pipeline, Serverless.WebConsole.ConsoleOptions options, CancellationToken cancellation)
    {
        Serverless.WebConsole.ConsoleServer console;
        try
        {
            console = await Serverless.WebConsole.ConsoleServer.StartAsync(pipeline.Runtime, options, cancellation);
        }
        catch (IOException e)
        {
            throw new CliException($"the web console cannot listen on {options.Listen}:{options.Port} ({e.Message}): pass --port with a free port, or --no-console.");
        }

        if (!options.IsLoopback)
        {
            writer.WriteLine($"tune up: WARNING — the console listens on {options.Listen}, not only this machine: anyone on the network who obtains the token can upload data and cancel jobs. It is plain HTTP; put it behind TLS to cross a network.");
        }

        writer.WriteLine($"tune up: web console at {console.LoginUrl} (the token in the address is the key: keep it to yourself)");
        if (pipeline is EmbeddedPipeline local)
        {
            ConsoleFile.Write(local.Home, console.Address, options.Token);
            console.Stopping += () => ConsoleFile.Remove(local.Home);
        }

        return console;
    }

    private static string Describe(JobDocument job)
    {
        var progress = job.State == JobState.Running && job.Progress is { } p ? $" {p.Phase} {p.Step}/{p.TotalSteps} loss {p.Loss:F3}" : "";
        var version = job.Version is { } v ? $" version {v}" : "";
        var error = job.Error is { } e && JobStates.IsTerminal(job.State) ? $" — {e.Split('\n')[0]}" : "";
        return $"{job.JobId} [{job.Model}] {job.State.ToString().ToLowerInvariant()}{progress}{version}{error}{Waiting(job)}";
    }

    /// <summary>For a waiting job: why, and when it is tried again.</summary>
    private static string Waiting(JobDocument job) => job.State == JobState.Waiting && job.Wait is { } w
        ? $" — {w.Reason}; " + (w.NextTryAt is { } at ? $"next try {at.ToLocalTime():HH:mm:ss} (`tune retry {job.JobId}` tries now)" : "until that run starts (`tune cancel` gives up on it)")
        : "";

    private static Command Retry()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var id = new Argument<string>("id") { Description = "The job id." };
        var command = new Command("retry", "Run a failed, waiting or cancelled job again from its last complete checkpoint, with a fresh attempt budget.") { id, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            var jobId = parse.GetValue(id)!;
            var result = await pipeline.Runtime.Api.RetryAsync(jobId, cancellation);
            if (result.Status != System.Net.HttpStatusCode.Accepted)
            {
                throw new CliException(result.Body["error"]?.GetValue<string>() ?? result.Body.ToJsonString());
            }

            parse.InvocationConfiguration.Output.WriteLine($"{jobId}: dispatched again; it resumes from its last checkpoint once a trainer is free (`tune up` must be running).");
            return 0;
        });
        return command;
    }

    private static Command Gc()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var olderThan = new Option<double?>("--older-than-days") { Description = "Remove the files of jobs finished more than this many days ago (default: the retention setting, 7)." };
        var command = new Command("gc", "Remove prepared shards and checkpoints of finished jobs past the retention period; registry versions are never touched.") { olderThan, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            var days = parse.GetValue(olderThan);
            if (days is < 0)
            {
                throw new CliException("--older-than-days must be 0 or more.");
            }

            var result = await pipeline.Runtime.Retention.SweepAsync(days is { } d ? TimeSpan.FromDays(d) : null, cancellation);
            parse.InvocationConfiguration.Output.WriteLine($"Removed {result.Blobs} files ({Serverless.Model.Training.DiskSpace.Format(result.Bytes)}) of {result.Jobs} finished jobs.");
            return 0;
        });
        return command;
    }

    private static Command Submit()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var file = new Argument<FileInfo>("file") { Description = "A dataset file (.txt or .jsonl)." };
        var model = new Option<string>("--model") { Description = "The model name (folder under datasets/).", Required = true };
        var spec = new Option<FileInfo?>("--spec") { Description = "A spec (tune.json) to store for the model first." };
        var command = new Command("submit", "Put a dataset file (and optionally the model's spec) into the pipeline's storage; `tune up` picks it up.") { file, model, spec, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var name = BlobNames.Model(parse.GetValue(model)!);
            var source = parse.GetValue(file)!;
            if (!source.Exists)
            {
                throw new CliException($"{source.FullName} does not exist.");
            }

            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            if (parse.GetValue(spec) is { } specFile)
            {
                var text = await File.ReadAllTextAsync(specFile.FullName, cancellation);
                Serverless.Pipeline.Specs.PipelineSpec.Parse(text, specFile.Name);   // refuse a bad spec here, naming the field
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{name}/{Containers.SpecFile}", new MemoryStream(Encoding.UTF8.GetBytes(text)), cancellationToken: cancellation);
            }

            await using (var content = source.OpenRead())
            {
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{name}/{BlobNames.Blob(source.Name)}", content, cancellationToken: cancellation);
            }

            writer.WriteLine($"Submitted {source.Name} to datasets/{name}/. With `tune up` running, the job appears in `tune jobs`.");
            return 0;
        });
        return command;
    }

    private static Command Jobs()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var id = new Argument<string?>("id") { Description = "A job id: show its whole document.", Arity = ArgumentArity.ZeroOrOne };
        var limit = new Option<int>("--limit") { Description = "How many of the newest jobs to list.", DefaultValueFactory = _ => 50 };
        limit.Validators.Add(r =>
        {
            if (r.GetValue(limit) is < 1 or > Serverless.Pipeline.Api.PipelineApi.MaxJobsListed)
            {
                r.AddError($"--limit must be between 1 and {Serverless.Pipeline.Api.PipelineApi.MaxJobsListed}.");
            }
        });
        var command = new Command("jobs", "List the newest jobs, or show one.") { id, limit, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            if (parse.GetValue(id) is { } jobId)
            {
                var found = await pipeline.Runtime.Jobs.GetAsync(jobId, cancellation) ?? throw new CliException($"no job {jobId}.");
                writer.WriteLine(JsonSerializer.Serialize(found.Job, Indented));
                return 0;
            }

            var table = new Table().AddColumns("job", "model", "state", "attempts", "progress", "version", "created");
            var shown = 0;
            await foreach (var job in pipeline.Runtime.Jobs.ListNewestAsync(cancellationToken: cancellation))
            {
                if (shown++ == parse.GetValue(limit))
                {
                    table.Caption($"the newest {shown - 1} jobs; --limit shows more");
                    break;
                }

                table.AddRow(Markup.Escape(job.JobId), Markup.Escape(job.Model), job.State.ToString().ToLowerInvariant(), job.Attempts.ToString(),
                    job.Progress is { } p ? $"{p.Phase} {p.Step}/{p.TotalSteps}" : "", job.Version?.ToString() ?? "", job.CreatedAt.ToString("u"));
            }

            Consoles.For(writer).Write(table);
            return 0;
        });
        return command;
    }

    private static Command Cancel()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var id = new Argument<string>("id") { Description = "The job id." };
        var command = new Command("cancel", "Ask a job to stop: training stops at its next step with a checkpoint.") { id, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            var jobId = parse.GetValue(id)!;
            if (await pipeline.Runtime.Jobs.GetAsync(jobId, cancellation) is null)
            {
                throw new CliException($"no job {jobId}.");
            }

            var now = DateTimeOffset.UtcNow;
            var job = await pipeline.Runtime.Jobs.UpdateAsync(jobId, j => j.RequestCancel(now), cancellation);
            parse.InvocationConfiguration.Output.WriteLine($"{jobId}: {job.State.ToString().ToLowerInvariant()}{(job.CancelRequested && job.State != JobState.Cancelled ? ", cancel requested" : "")}");
            return 0;
        });
        return command;
    }

    private static Command Models()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var reference = new Argument<string?>("model") { Description = "NAME, NAME@version or NAME@alias.", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = $"With NAME: every version, not only the newest {ModelRegistry.DefaultHeadVersions}." };
        var command = new Command("models", "List registry models, a model's versions, or one version's manifest.") { reference, all, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            var registry = pipeline.Runtime.Registry;
            var argument = parse.GetValue(reference);
            if (argument is null)
            {
                var names = new SortedSet<string>(StringComparer.Ordinal);
                await foreach (var item in pipeline.Blobs.ListAsync(Containers.Registry, "", cancellation))
                {
                    if (item.Name.EndsWith("/index.json", StringComparison.Ordinal))
                    {
                        names.Add(item.Name[..item.Name.IndexOf('/', StringComparison.Ordinal)]);
                    }
                }

                var table = new Table().AddColumns("model", "versions", "latest", "champion");
                foreach (var name in names)
                {
                    var index = (await registry.ReadIndexAsync(name, cancellation))!.Value.Index;
                    table.AddRow(name, index.Ready.ToString(),
                        index.Aliases.GetValueOrDefault("latest").ToString(), index.Aliases.GetValueOrDefault("champion").ToString());
                }

                Consoles.For(writer).Write(table);
                return 0;
            }

            var at = argument.IndexOf('@', StringComparison.Ordinal);
            var model = BlobNames.Model(at < 0 ? argument : argument[..at]);
            if (at < 0)
            {
                var index = (await registry.ReadIndexAsync(model, cancellation))?.Index ?? throw new CliException($"the registry has no model '{model}'.");
                var versions = await registry.ListVersionsAsync(model, parse.GetValue(all) ? int.MaxValue : ModelRegistry.DefaultHeadVersions, cancellation) ?? [];
                var table = new Table().AddColumns("version", "state", "perplexity", "job", "created", "aliases");
                foreach (var v in versions.Reverse())
                {
                    table.AddRow(v.Version.ToString(), v.State, v.Perplexity.ToString("F3"), Markup.Escape(v.JobId), v.CreatedAt.ToString("u"),
                        string.Join(", ", index.Aliases.Where(a => a.Value == v.Version).Select(a => a.Key)));
                }

                Consoles.For(writer).Write(table);
                if (versions.Count(v => v.State == "ready") < index.Ready)
                {
                    writer.WriteLine($"{index.Ready - versions.Count(v => v.State == "ready")} older version(s) not shown: tune models {model} --all");
                }

                return 0;
            }

            var version = await registry.FindVersionAsync(model, argument[(at + 1)..], cancellation)
                ?? throw new CliException($"'{argument}' names no ready version.");
            var manifest = await pipeline.Blobs.OpenReadAsync(Containers.Registry, $"{model}/{version}/manifest.json", cancellation)
                ?? throw new CliException($"model-registry/{model}/{version}/ has no manifest.json.");
            await using var content = manifest.Content;
            using var reader = new StreamReader(content);
            writer.WriteLine(await reader.ReadToEndAsync(cancellation));
            return 0;
        });
        return command;
    }

    private static Command Events()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var model = new Option<string?>("--model") { Description = "Only this model's events." };
        var follow = new Option<bool>("--follow") { Description = "Keep printing events as they arrive." };
        var command = new Command("events", "Print model events (ModelPublished, ModelRejected, DatasetRejected) as CloudEvents JSON, from this command's own subscription on model-events.") { model, follow, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            var name = "cli-" + (parse.GetValue(model) is { } m ? BlobNames.Model(m) : "all");
            var filter = parse.GetValue(model) is { } only
                ? new SubscriptionFilter(new Dictionary<string, IReadOnlyList<string>> { [MessageProperties.Model] = [only] })
                : SubscriptionFilter.All;
            await pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, name, filter, cancellationToken: cancellation);
            var entity = Entities.Subscription(Entities.ModelEvents, name);
            do
            {
                var messages = await pipeline.Bus.ReceiveAsync(entity, 50, cancellation);
                foreach (var message in messages)
                {
                    writer.WriteLine(message.Body);
                    await pipeline.Bus.CompleteAsync(entity, message, cancellation);
                }

                if (messages.Count == 0 && parse.GetValue(follow))
                {
                    try
                    {
                        await Task.Delay(500, cancellation);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
                else if (messages.Count == 0)
                {
                    break;
                }
            }
            while (!cancellation.IsCancellationRequested);
            return 0;
        });
        return command;
    }

    private static Command DeadLetters()
    {
        var home = Home();
        var store = PipelineParts.Store();
        var requeue = new Option<bool>("--requeue") { Description = "Send them back to be handled again." };
        var command = new Command("deadletters", "List messages that could not be handled, with the reason; --requeue sends them back.") { requeue, home, store };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            using var pipeline = PipelineParts.Open(parse.GetValue(store)!, parse.GetValue(home)!);
            await pipeline.Runtime.Bus.EnsureTopologyAsync(cancellationToken: cancellation);
            var entities = StageEntities.All.Select(s => s.Entity);
            var table = new Table().AddColumns("entity", "message", "deliveries", "reason", "description");
            var total = 0;
            foreach (var entity in entities)
            {
                foreach (var dead in await pipeline.Bus.PeekDeadLettersAsync(entity, cancellationToken: cancellation))
                {
                    table.AddRow(Markup.Escape(entity), Markup.Escape(dead.MessageId), dead.DeliveryCount.ToString(), Markup.Escape(dead.Reason), Markup.Escape(dead.Description));
                    total++;
                }

                if (parse.GetValue(requeue))
                {
                    await pipeline.Bus.RequeueDeadLettersAsync(entity, cancellation);
                }
            }

            Consoles.For(writer).Write(table);
            writer.WriteLine(parse.GetValue(requeue) ? $"{total} message(s) requeued." : $"{total} dead-lettered message(s).");
            return 0;
        });
        return command;
    }

}

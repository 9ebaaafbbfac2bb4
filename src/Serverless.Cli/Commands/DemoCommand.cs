using System.CommandLine;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Evaluation;
using Serverless.Model.FineTuning;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary>
/// <c>tune demo</c>: the whole product on one machine. Installs the shipped byte-level base model, pre-trained offline
/// on the King James Bible (first run only, into <c>{home}/base-models/demo-base</c>; <c>--pretrain-steps</c> pre-trains
/// one here instead), writes the demo's spec, drops the
/// shipped fortunes into <c>{home}/datasets/demo/</c>, and runs the pipeline — Ingest, Prepare, Dispatch, Train,
/// Evaluate, Publish — until <c>ModelPublished</c>; then prints the evaluation table, the event as a subscriber
/// received it, and a sample from the published model.
/// </summary>
internal static class DemoCommand
{
    private const string Model = "demo";
    private const string Subscription = "demo-command";
    private static readonly JsonSerializerOptions Indented = new(CloudEvent.JsonOptions) { WriteIndented = true };

    public static Command Create()
    {
        var home = PipelineCommands.Home();
        var steps = new Option<int?>("--steps") { Description = "Fine-tuning steps (default 100)." };
        var pretrainSteps = new Option<int?>("--pretrain-steps") { Description = "Pre-train the base here with this many steps on the first run, instead of installing the shipped base (text; image and audio: default 250 / 200)." };
        var json = new Option<bool>("--json") { Description = "Print only the ModelPublished event as JSON." };
        var modality = new Option<string>("--modality")
        {
            Description = "text (fortunes on a Bible-trained base), image (a calligraphic font on a base trained on 20 other fonts) or audio (a voice the base never heard).",
            DefaultValueFactory = _ => Serverless.Model.Media.Modality.Text,
        };
        modality.AcceptOnlyFromAmong([.. Serverless.Model.Media.Modality.All]);
        var command = new Command("demo", "Install the shipped base model (first run only), then drop new data into the pipeline and follow it to a published model.")
        {
            home, steps, pretrainSteps, json, modality,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var quiet = parse.GetValue(json);
            using var pipeline = new EmbeddedPipeline(parse.GetValue(home)!);
            if (parse.GetValue(modality) != Serverless.Model.Media.Modality.Text)
            {
                return await MediaDemo.RunAsync(writer, pipeline, parse.GetValue(modality)!, parse.GetValue(steps), parse.GetValue(pretrainSteps), quiet, cancellation);
            }

            var baseDirectory = Path.Combine(pipeline.Home, Containers.BaseModels, "demo-base");
            if (await pipeline.Blobs.GetAsync(Containers.BaseModels, "demo-base/model.safetensors", cancellation) is null)
            {
                if (parse.GetValue(pretrainSteps) is { } pretrain)
                {
                    if (!quiet)
                    {
                        writer.WriteLine($"First run: pre-training the demo base model on the King James Bible into {baseDirectory} ({pretrain} steps)…");
                    }

                    using var corpus = new CorpusFiles(Path.Combine(pipeline.Home, "work", "demo-corpus"));
                    var bible = corpus.Write("kjv.txt", () => Resource("kjv.txt.gz"));
                    var pretrained = new ProgressView(writer, quiet).Run("pretrain", report => Pretraining.Run([bible], baseDirectory, "tiny", "bytes",
                        PretrainCommand.DefaultSpec.WithSteps(pretrain), p => report("pretrain", p), cancellation: cancellation));
                    if (!quiet)
                    {
                        writer.WriteLine($"Base model: {pretrained.Parameters:N0} parameters, Bible validation perplexity {pretrained.Validation.Perplexity:F2}.");
                    }
                }
                else
                {
                    var shipped = ShippedBase.Install(Resource(ShippedBase.ResourceName), baseDirectory);
                    if (!quiet)
                    {
                        writer.WriteLine($"First run: installed the shipped demo base model into {baseDirectory}: {shipped.Parameters:N0} parameters, " +
                            $"pre-trained offline on the King James Bible ({shipped.Steps:N0} steps, validation perplexity {shipped.Validation.Perplexity:F2}; tools/pretrain-demo-base.sh).");
                    }
                }
            }

            var entity = await SubscribeAsync(pipeline, Model, cancellation);
            var runs = await RunsAsync(pipeline, Model, cancellation);
            await WriteAsync(pipeline, $"{Model}/{Containers.SpecFile}", Spec(parse.GetValue(steps), runs).ToJsonString(), cancellation);
            await pipeline.Blobs.DeleteAsync(Containers.Datasets, $"{Model}/fortunes.jsonl", cancellationToken: cancellation);
            await using (var fortunes = new System.IO.Compression.GZipStream(Resource("fortunes.jsonl.gz"), System.IO.Compression.CompressionMode.Decompress))
            {
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{Model}/fortunes.jsonl", fortunes, cancellationToken: cancellation);
            }

            if (!quiet)
            {
                writer.WriteLine($"Dropped fortunes.jsonl into {Path.Combine(pipeline.Home, Containers.Datasets, Model)}/; following the pipeline…");
            }

            var outcome = await FollowAsync(writer, pipeline, Model, entity, quiet, cancellation);
            return await ReportAsync(writer, pipeline, outcome, quiet, cancellation);
        });
        return command;
    }

    /// <summary>A subscription of our own on model-events for <paramref name="model"/>, created before the data lands (so it sees this run's event), drained of old events.</summary>
    internal static async Task<string> SubscribeAsync(EmbeddedPipeline pipeline, string model, CancellationToken cancellation)
    {
        await pipeline.Runtime.Bus.EnsureTopologyAsync(cancellationToken: cancellation);
        var filter = new SubscriptionFilter(new Dictionary<string, IReadOnlyList<string>> { [MessageProperties.Model] = [model] });
        var subscription = Subscription + (model == Model ? "" : "-" + model);
        await pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, subscription, filter, cancellationToken: cancellation);
        var entity = Entities.Subscription(Entities.ModelEvents, subscription);
        foreach (var stale in await pipeline.Bus.ReceiveAsync(entity, 1000, cancellation))
        {
            await pipeline.Bus.CompleteAsync(entity, stale, cancellation);
        }

        return entity;
    }

    /// <summary>Jobs the model has had (each demo run uses a new seed, so it is a new job).</summary>
    internal static async Task<int> RunsAsync(EmbeddedPipeline pipeline, string model, CancellationToken cancellation)
    {
        var runs = 0;
        await foreach (var _ in pipeline.Runtime.Jobs.ListAsync(model, cancellation))
        {
            runs++;
        }

        return runs;
    }

    /// <summary>Runs the pipeline until an event of this run arrives on <paramref name="entity"/>, printing job progress.</summary>
    internal static async Task<CloudEvent> FollowAsync(TextWriter writer, EmbeddedPipeline pipeline, string model, string entity, bool quiet, CancellationToken cancellation)
    {
        var started = DateTimeOffset.UtcNow.AddSeconds(-1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var running = pipeline.RunAsync(stop.Token);
        CloudEvent? outcome = null;
        var shown = new HashSet<string>();
        while (outcome is null)
        {
            if (running.IsFaulted)
            {
                await running;
            }

            cancellation.ThrowIfCancellationRequested();
            foreach (var message in await pipeline.Bus.ReceiveAsync(entity, 10, cancellation))
            {
                await pipeline.Bus.CompleteAsync(entity, message, cancellation);
                var received = CloudEvent.Parse(message.Body);
                if (received.Type == nameof(JobWaiting))
                {
                    var waiting = received.DataAs<JobWaiting>();
                    writer.WriteLine($"  job {waiting.JobId}: waiting — {waiting.Reason}");
                    continue;   // not an outcome: it resumes by itself
                }

                outcome ??= received;
            }

            await foreach (var job in pipeline.Runtime.Jobs.ListAsync(model, cancellation))
            {
                if (job.CreatedAt < started)
                {
                    continue;
                }

                if (!quiet && shown.Add(Line(job)))
                {
                    writer.WriteLine(Line(job));
                }

                if (job.State is JobState.Failed or JobState.Cancelled && outcome is null && (job.DatasetErrors is null || job.DatasetErrors.Count == 0))
                {
                    await stop.CancelAsync();
                    await running;
                    throw new CliException($"job {job.JobId} {job.State.ToString().ToLowerInvariant()}: {job.Error} (see `tune jobs {job.JobId} --home {pipeline.Home}`)");
                }
            }

            if (outcome is null)
            {
                await Task.Delay(500, cancellation);
            }
        }

        await stop.CancelAsync();
        await running;
        return outcome;
    }

    private static string Line(JobDocument job) => job.State == JobState.Running && job.Progress is { } p
        ? $"  job {job.JobId}: running — {p.Phase} step {p.Step}/{p.TotalSteps}, loss {p.Loss:F3}, {p.TokensPerSecond:N0} tokens/s"
        : $"  job {job.JobId}: {job.State.ToString().ToLowerInvariant()}";

    /// <summary>
    /// Prints the outcome: with <paramref name="quiet"/> the event's JSON alone; for anything but <c>ModelPublished</c>
    /// the event; otherwise the evaluation table and the event as a subscriber received it. Returns the exit code when
    /// there is nothing more to print, else the published version and its metrics.
    /// </summary>
    internal static async Task<(int? Exit, ModelPublished Published, FineTuneReport Report)> PrintOutcomeAsync(
        TextWriter writer, EmbeddedPipeline pipeline, CloudEvent outcome, bool quiet, CancellationToken cancellation)
    {
        if (quiet)
        {
            writer.WriteLine(outcome.ToJson());
            return (outcome.Type == nameof(ModelPublished) ? 0 : 1, null!, null!);
        }

        if (outcome.Type != nameof(ModelPublished))
        {
            writer.WriteLine($"The pipeline ended with {outcome.Type}:");
            writer.WriteLine(JsonSerializer.Serialize(outcome, Indented));
            return (1, null!, null!);
        }

        var published = outcome.DataAs<ModelPublished>();
        var job = (await pipeline.Runtime.Jobs.GetAsync(published.JobId, cancellation))!.Value.Job;
        var report = FineTuneReport.FromJson(job.Metrics!.ToJsonString());
        FinetuneCommand.PrintReport(writer, report, Path.Combine(pipeline.Home, published.Uri));
        writer.WriteLine();
        writer.WriteLine("The event, as a subscriber of model-events received it:");
        writer.WriteLine(JsonSerializer.Serialize(outcome, Indented));
        writer.WriteLine();
        writer.WriteLine(ConsoleFile.Describe(pipeline.Home, published.Model, published.Version));
        return (null, published, report);
    }

    private static async Task<int> ReportAsync(TextWriter writer, EmbeddedPipeline pipeline, CloudEvent outcome, bool quiet, CancellationToken cancellation)
    {
        var (exit, published, _) = await PrintOutcomeAsync(writer, pipeline, outcome, quiet, cancellation);
        if (exit is { } code)
        {
            return code;
        }

        var directory = Path.Combine(pipeline.Home, "work", "demo-sample");
        await pipeline.Runtime.Registry.DownloadVerifiedAsync(Model, published.Version, directory, cancellationToken: cancellation);
        using var model = Gpt2Model.FromPretrained(directory);
        var tokenizer = TokenizerRegistry.Get(model.Config.TokenizerName);
        const string prompt = "Q: What is the meaning of life?\nA: ";
        var options = new GenerationOptions { MaxNewTokens = 160, Temperature = 0.8, TopK = 40, Seed = 7 };
        var ids = TextGenerator.Generate(model, tokenizer.Encode(prompt), options);
        writer.WriteLine();
        writer.WriteLine($"A sample from {Model}@{published.Version} (`tune generate --model {Model}@champion` serves it too):");
        writer.WriteLine(prompt + tokenizer.Decode(ids.Where(i => i != tokenizer.EndOfText)));
        writer.WriteLine(WordShareLine(model, tokenizer, options));
        return 0;
    }

    /// <summary>
    /// Whether the published model writes words: the share of dictionary words in 20 samples of 200 tokens (bytes for
    /// the demo), sampled with the sample's settings but each from the start of a document; or how to get the
    /// dictionary when it is missing.
    /// </summary>
    internal static string WordShareLine(Gpt2Model model, ITextTokenizer tokenizer, GenerationOptions options)
    {
        if (DictionaryWords.Load() is not { } dictionary)
        {
            return $"(Dictionary words not measured: {DictionaryWords.DefaultPath} is missing; `apt-get install wamerican` adds it.)";
        }

        var (share, _) = dictionary.MeasureSamples(model, tokenizer, options);
        var unit = tokenizer.Name == "bytes" ? "bytes" : "tokens";
        return $"Dictionary words in 20 samples of 200 {unit} (temperature {options.Temperature}, top-k {options.TopK}): {share.Share:P0} " +
            $"({share.Found:N0} of {share.Words:N0} words are in {DictionaryWords.DefaultPath}).";
    }

    /// <summary>
    /// What every demo's spec shares: full fine-tuning, short, evaluated often, checkpointed twice; each run a new seed,
    /// so each run is a new job.
    /// </summary>
    internal static JsonObject CommonSpec(string baseModel, int steps, int run, int evalEvery, double minImprovementOverBase) => new()
    {
        ["baseModel"] = baseModel,
        ["debounceSeconds"] = 0.5,
        ["gate"] = new JsonObject { ["minImprovementOverBase"] = minImprovementOverBase, ["mustBeatChampion"] = false },
        ["strategy"] = "full",
        ["steps"] = steps,
        ["batchSize"] = 16,
        ["learningRate"] = 1e-3,
        ["warmupSteps"] = Math.Min(10, steps),
        ["evalEvery"] = evalEvery,
        ["evalTokens"] = 16384,
        ["checkpointEvery"] = Math.Max(1, steps / 2),
        ["earlyStoppingPatience"] = 3,
        ["seed"] = 1337 + run,
    };

    /// <summary>The text demo's spec: 100 steps, two sample prompts, and the data-efficiency curve at 10 %.</summary>
    private static JsonObject Spec(int? steps, int run)
    {
        var spec = CommonSpec("demo-base", steps ?? 100, run, evalEvery: 25, minImprovementOverBase: 0.05);
        spec["sampleTokens"] = 120;
        spec["samplePrompts"] = new JsonArray("Q: What is the meaning of life?\nA: ", "A fool ");
        // The data-efficiency curve on one subset only (two more runs) to stay within the demo's three minutes;
        // `tune finetune --curve` measures 10 % and 30 %.
        spec["dataFractions"] = new JsonArray(0.1, 1.0);
        return spec;
    }

    private static Task<BlobItem> WriteAsync(EmbeddedPipeline pipeline, string name, string text, CancellationToken cancellation) =>
        pipeline.Blobs.WriteAsync(Containers.Datasets, name, new MemoryStream(Encoding.UTF8.GetBytes(text)), cancellationToken: cancellation);

    private static Stream Resource(string name) =>
        Assembly.GetExecutingAssembly().GetManifestResourceStream("demo/" + name)
        ?? throw new InvalidOperationException($"The demo file {name} (data/demo/) is not embedded in this build.");
}

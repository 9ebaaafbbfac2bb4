using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Safetensors;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.FineTuning;

/// <summary>One fine-tuning job, run directly (without the pipeline).</summary>
/// <param name="BaseModel">The base model directory.</param>
/// <param name="Data">Dataset files (.txt / .jsonl), or null when <paramref name="Prepared"/> holds shards already.</param>
/// <param name="OutputDirectory">Where shards, checkpoints and the candidate go.</param>
/// <param name="Spec">The recipe.</param>
/// <param name="Prepared">A directory with <c>train.bin</c>, <c>val.bin</c> and <c>manifest.json</c>; default <c>{out}/prepared</c>.</param>
/// <param name="Champion">The registry's current champion model directory, scored beside the others when given.</param>
public sealed record FineTuneRequest(string BaseModel, IReadOnlyList<string>? Data, string OutputDirectory, TrainingSpec Spec, string? Prepared = null, string? Champion = null)
{
    /// <summary>Called with (phase, checkpoint directory) after each checkpoint, to copy it somewhere durable.</summary>
    public Action<string, string>? CheckpointWritten { get; init; }

    /// <summary>Where to compute: null for the CPU, or a CUDA device (the trainer picks CUDA when <c>torch.cuda.is_available()</c>).</summary>
    public Device? Device { get; init; }

    /// <summary>The dataset folder, for image and audio datasets with class folders (<c>{root}/{class}/x.png</c>); null: no classes.</summary>
    public string? DataRoot { get; init; }

    /// <summary>
    /// The program that trains the scratch runs side by side with the candidate's (the trainer program, which serves
    /// <c>side-runs {request}</c>); null: this process trains every run in turn.
    /// </summary>
    public ProcessCommand? SideProcess { get; init; }

    /// <summary>Side by side (with <see cref="SideProcess"/>): true or false as asked; null leaves it to the job (<see cref="SideRuns.Wanted"/>).</summary>
    public bool? SideBySide { get; init; }
}

/// <summary>
/// Runs a job end to end: prepare (validate, split, tokenize), score the base model zero-shot, train the candidate
/// with the spec's strategy, train the scratch baseline under the same budget, score both, generate samples, and
/// write <c>candidate/</c>: a Hugging Face model directory with <c>metrics.json</c>, <c>report.md</c> and <c>loss.png</c>
/// (and <c>adapter/</c> for LoRA). Checkpoints under <c>checkpoints/</c> make a rerun resume where it stopped.
/// </summary>
public static class FineTuneJob
{
    /// <summary>The candidate's directory under the output directory.</summary>
    public const string CandidateDirectory = "candidate";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>
    /// Runs the job; <paramref name="progress"/> gets (phase, progress) with phase <c>candidate</c>, <c>scratch</c> or a
    /// curve's (<see cref="CurvePhase"/>). With the scratch runs side by side (<see cref="FineTuneRequest.SideProcess"/>)
    /// their progress and checkpoints arrive on another thread, interleaved with the candidate's, but never while
    /// another callback of the job is running.
    /// </summary>
    public static FineTuneReport Run(FineTuneRequest request, Action<string, TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var spec = request.Spec.Validate();
        var probes = BiasProbes.Load(spec.BiasProbes);   // a missing probe file fails now, not after training
        var output = request.OutputDirectory;
        var device = request.Device ?? CPU;
        using var baseModel = Gpt2Model.FromPretrained(request.BaseModel);
        baseModel.to(device);
        var media = baseModel.Config.Media;
        if (spec.MediaProblems(media) is { Count: > 0 } mediaProblems)
        {
            throw new SpecException("spec", mediaProblems);
        }

        var modality = baseModel.Config.Modality;
        var tokenizer = media is null ? TokenizerRegistry.Get(baseModel.Config.TokenizerName) : null;
        var endOfText = media?.StartToken ?? tokenizer!.EndOfText;
        var prepared = request.Prepared ?? Path.Combine(output, "prepared");
        var manifest = EnsurePrepared(request, prepared, DocumentSources.For(baseModel.Config, request.DataRoot), spec);

        using var train = TokenShardReader.Open(Path.Combine(prepared, DatasetPreparer.TrainFile));
        using var validation = TokenShardReader.Open(Path.Combine(prepared, DatasetPreparer.ValidationFile));
        using var test = TokenShardReader.Open(Path.Combine(prepared, DatasetPreparer.TestFile));
        var blockSize = TrainingLoop.Windows(baseModel.Config, spec, train).BlockSize;

        // Every reported score is on the test split, which neither training nor early stopping ever saw.
        // Image and audio scores count value tokens only (bits per dimension / sample); text counts every token.
        EvaluationResult Score(Gpt2Model m) => media is null
            ? Evaluator.Evaluate(m, test, Math.Min(blockSize, m.Config.NPositions), manifest.ScoredTestBytes)
            : Evaluator.Evaluate(m, test, Math.Min(blockSize, m.Config.NPositions), scoredBelow: media.Levels);
        ModelScore Scored(Gpt2Model m) => ModelScore.From(Score(m), modality);

        var baseScore = Score(baseModel);
        EvaluationResult? championScore = null;
        if (request.Champion is { } championDirectory)
        {
            using var champion = Gpt2Model.FromPretrained(championDirectory);
            champion.to(device);
            championScore = Score(champion);
        }

        // What each run trains with: the curve's fractions say which runs there are, not how one is trained, so a
        // finished job's checkpoints stay resumable when a curve is asked for afterwards.
        var runSpec = spec with { DataFractions = null };
        using var candidate = BuildCandidate(baseModel, request.BaseModel, runSpec, out var teacher);
        if (media is not null && manifest.Classes is { } classes)
        {
            candidate.Config = candidate.Config with { Media = media with { Classes = classes } };   // classes the data brought take free class tokens
        }

        candidate.to(device);
        teacher?.to(device);

        // The host's callbacks, one at a time: with scratch runs side by side, that process's arrive from another thread.
        var gate = new object();
        Action<string, TrainingProgress>? relay = progress is null ? null : (phase, p) =>
        {
            lock (gate)
            {
                progress(phase, p);
            }
        };
        Action<string, string>? written = request.CheckpointWritten is { } copy ? (phase, directory) =>
        {
            lock (gate)
            {
                copy(phase, directory);
            }
        } : null;
        var scratchRuns = ScratchRuns(spec);
        using var side = request.SideProcess is { } command && SideRuns.Wanted(request.SideBySide, device, candidate.ParameterCount(), scratchRuns.Count)
            ? StartSide(command, new SideRunsRequest(Path.GetFullPath(prepared), Path.GetFullPath(output), runSpec.ToExactJson(), blockSize, endOfText, scratchRuns),
                candidate.Config, relay, written)
            : null;
        using (teacher)
        {
            var trainable = StrategySetup.Apply(candidate, runSpec);
            var candidateResult = TrainCandidate(candidate, trainable, teacher, train, "candidate");
            var candidateScore = Scored(candidate);

            TrainingResult? scratchResult = null;
            ModelScore? scratchScore = null;
            Gpt2Model? scratch = null;
            long scratchTrainable = 0, scratchParameterCount = 0;
            if (spec.CompareWithScratch && spec.Strategy != Strategies.Scratch)
            {
                // The candidate's own architecture, untrained: for distill that is the student (the same model without
                // the teacher is the honest comparison), for the other strategies the base's.
                (scratch, scratchResult, scratchTrainable) = Scratch(train, "scratch");
                scratchParameterCount = scratch.ParameterCount();
                scratchScore = Scored(scratch);
            }

            var curve = scratchScore is null ? null : DataEfficiencyCurve(candidateScore, scratchScore);
            var samples = tokenizer is null ? [] : Samples(baseModel, candidate, tokenizer, spec, validation);
            var mediaDirectory = Path.Combine(output, "media-samples");
            var (quality, sampleFiles) = media is null || spec.SampleTokens == 0
                ? (null, [])
                : MediaSamples.Write(mediaDirectory, candidate.Config.Media!, baseModel, scratch, candidate, train, test, spec.Seed);
            scratch?.Dispose();
            var report = new FineTuneReport(
                FineTuneReport.SchemaName, spec.Strategy, baseModel.Config.TokenizerName, manifest.TrainTokens, manifest.ValidationTokens,
                ModelScore.From(baseScore, modality), candidateScore, scratchScore,
                1 - candidateScore.Perplexity / baseScore.Perplexity,
                scratchScore is null ? null : 1 - candidateScore.Perplexity / scratchScore.Perplexity,
                Summary(spec.Strategy, candidate, trainable.Sum(p => p.Parameter.numel()), candidateResult),
                scratchResult is null ? null : Summary(Strategies.Scratch, candidate, scratchTrainable, scratchResult, scratchParameterCount),
                samples, spec)
            {
                Champion = championScore is null ? null : ModelScore.From(championScore, modality),
                TestTokens = manifest.TestTokens,
                Bias = tokenizer is null ? [] : BiasEvaluator.Measure(baseModel, candidate, tokenizer, probes),
                Modality = modality,
                SampleQuality = quality,
                SampleFiles = sampleFiles,
                DataEfficiency = curve,
                Speedup = scratchResult is null ? null
                    : TrainingSpeedup.From(candidateResult.ValidationLoss, candidateResult.TokensPerSecond, scratchResult.ValidationLoss, scratchResult.TokensPerSecond),
                ScoresSplit = "test",
                EarlyStoppingSplit = "validation",
            };
            WriteCandidate(Path.Combine(output, CandidateDirectory), candidate, report, candidateResult, scratchResult, spec, Path.GetFileName(Path.TrimEndingDirectorySeparator(request.BaseModel)),
                Directory.Exists(mediaDirectory) ? mediaDirectory : null);
            return report;

            TrainingResult TrainCandidate(Gpt2Model model, IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters, Gpt2Model? withTeacher, ITokenSource data, string phase) =>
                TrainingLoop.Train(model, parameters, runSpec, data, validation, Options(phase, withTeacher));

            // A scratch run: trained here, or taken from the side process (which trains the same run on the same data).
            (Gpt2Model Model, TrainingResult Result, long Trainable) Scratch(ITokenSource data, string phase)
            {
                if (side is not null)
                {
                    var (result, trainable, trained) = side.Take(phase, cancellation);
                    trained.to(device);
                    return (trained, result, trainable);
                }

                var model = new Gpt2Model(candidate.Config, spec.Seed);
                model.to(device);
                var (own, ownTrainable) = TrainScratch(model, runSpec, data, validation, Options(phase, null));
                return (model, own, ownTrainable);
            }

            TrainingOptions Options(string phase, Gpt2Model? withTeacher) => new()
            {
                CheckpointDirectory = Path.Combine(output, "checkpoints", phase),
                Progress = p =>
                {
                    side?.BetweenSteps();
                    relay?.Invoke(phase, p);
                },
                Cancellation = cancellation,
                Teacher = withTeacher,
                CheckpointWritten = written is null ? null : dir => written(phase, dir),
            };

            // Candidate and scratch again on nested subsets of the training split, smallest first; the whole split is
            // the job's own two runs. Each run checkpoints under its own phase, so a stopped curve resumes too.
            DataEfficiency? DataEfficiencyCurve(ModelScore fullCandidate, ModelScore fullScratch)
            {
                var fractions = spec.CurveFractions();
                if (fractions.Count == 0)
                {
                    return null;
                }

                var subsets = new NestedSubsets(train, endOfText, spec.SplitSeed);
                var points = new List<CurvePoint> { new(1, subsets.Documents, train.Count, fullCandidate, fullScratch) };
                foreach (var fraction in fractions)
                {
                    var subset = CurveSubset(subsets, fraction, blockSize);
                    using var small = BuildCandidate(baseModel, request.BaseModel, runSpec, out var smallTeacher);
                    using (smallTeacher)
                    {
                        small.to(device);
                        smallTeacher?.to(device);
                        TrainCandidate(small, StrategySetup.Apply(small, runSpec), smallTeacher, subset, CurvePhase("candidate", fraction));
                    }

                    var smallCandidate = Scored(small);
                    using var smallScratch = Scratch(subset, CurvePhase("scratch", fraction)).Model;
                    points.Add(new CurvePoint(fraction, subset.Documents, subset.Count, smallCandidate, Scored(smallScratch)));
                }

                return DataEfficiency.From(points);
            }
        }
    }

    /// <summary>The phase (progress, checkpoints) of a data-efficiency run: <c>candidate-f0.1</c>, <c>scratch-f0.1</c>.</summary>
    public static string CurvePhase(string run, double fraction) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{run}-f{fraction:0.####}");

    /// <summary>A curve point's training data: the same subset for the candidate here and for scratch in the side process.</summary>
    internal static NestedSubsets.Subset CurveSubset(NestedSubsets subsets, double fraction, int blockSize) =>
        subsets.Take(fraction, minTokens: blockSize + 1);

    /// <summary>The side process, or null (the runs then train in turn, here) when its program cannot be started.</summary>
    private static SideRuns? StartSide(ProcessCommand command, SideRunsRequest request, Gpt2Config config,
        Action<string, TrainingProgress>? progress, Action<string, string>? checkpointWritten)
    {
        try
        {
            return SideRuns.Start(command, request, config, progress, checkpointWritten);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"warning: could not start {command.Executable} for the scratch runs side by side ({e.Message}); training them in turn.");
            return null;
        }
    }

    /// <summary>
    /// Trains <paramref name="model"/> from scratch on <paramref name="data"/> with the job's run spec: the same for a
    /// scratch run in the job's process and in the side process.
    /// </summary>
    internal static (TrainingResult Result, long Trainable) TrainScratch(Gpt2Model model, TrainingSpec runSpec, ITokenSource data, ITokenSource validation, TrainingOptions options)
    {
        var scratchSpec = runSpec with { Strategy = Strategies.Scratch };
        var parameters = StrategySetup.Apply(model, scratchSpec);
        return (TrainingLoop.Train(model, parameters, scratchSpec, data, validation, options), parameters.Sum(p => p.Parameter.numel()));
    }

    /// <summary>The scratch runs of a job with <paramref name="spec"/>, in the order they run: the baseline, then the curve's.</summary>
    private static List<SideRun> ScratchRuns(TrainingSpec spec) =>
        spec.CompareWithScratch && spec.Strategy != Strategies.Scratch
            ? [new SideRun("scratch", null), .. spec.CurveFractions().Select(f => new SideRun(CurvePhase("scratch", f), f))]
            : [];

    /// <summary>Every training phase of a job with <paramref name="spec"/>, in the order they run (their checkpoints are restored by these names).</summary>
    public static IReadOnlyList<string> Phases(TrainingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var phases = new List<string> { "candidate" };
        if (spec.CompareWithScratch && spec.Strategy != Strategies.Scratch)
        {
            phases.Add("scratch");
            foreach (var fraction in spec.CurveFractions())
            {
                phases.Add(CurvePhase("candidate", fraction));
                phases.Add(CurvePhase("scratch", fraction));
            }
        }

        return phases;
    }

    internal static PreparedDataset EnsurePrepared(FineTuneRequest request, string prepared, IDocumentSource source, TrainingSpec spec)
    {
        var manifestPath = Path.Combine(prepared, "manifest.json");
        if (File.Exists(manifestPath) && File.Exists(Path.Combine(prepared, DatasetPreparer.TestFile)))
        {
            return JsonSerializer.Deserialize<PreparedDataset>(File.ReadAllText(manifestPath))
                ?? throw new InvalidDataException($"{manifestPath} is empty.");
        }

        if (request.Data is null || request.Data.Count == 0)
        {
            throw new ArgumentException("No dataset files were given and no prepared shards exist.", nameof(request));
        }

        var preparer = new DatasetPreparer(source, new DocumentSplit(spec.SplitSeed, spec.ValidationFraction, spec.TestFraction));
        var result = preparer.Prepare(request.Data, prepared);
        File.WriteAllText(manifestPath, JsonSerializer.Serialize(result, Indented));
        return result;
    }

    private static Gpt2Model BuildCandidate(Gpt2Model baseModel, string baseDirectory, TrainingSpec spec, out Gpt2Model? teacher)
    {
        teacher = null;
        switch (spec.Strategy)
        {
            case Strategies.Scratch:
                return new Gpt2Model(baseModel.Config, spec.Seed);
            case Strategies.Distill:
                teacher = spec.Teacher is null ? Gpt2Model.FromPretrained(baseDirectory) : Gpt2Model.FromPretrained(spec.Teacher);
                if (teacher.Config.VocabSize != baseModel.Config.VocabSize || teacher.Config.TokenizerName != baseModel.Config.TokenizerName
                    || (teacher.Config.Media, baseModel.Config.Media) is ({ } t, { } b) && (t.ImageSize, t.Channels, t.Levels, t.SampleRate) != (b.ImageSize, b.Channels, b.Levels, b.SampleRate))
                {
                    teacher.Dispose();
                    throw new SpecException("spec", [$"teacher: uses the {teacher.Config.TokenizerName} tokenizer (vocab {teacher.Config.VocabSize}); the student must share it ({baseModel.Config.TokenizerName}, vocab {baseModel.Config.VocabSize})."]);
                }

                return Distillation.Student(baseModel, spec.StudentLayers ?? Math.Max(1, baseModel.Config.NLayer / 2));
            default:
                return Gpt2Model.FromPretrained(baseDirectory);
        }
    }

    private static List<Sample> Samples(Gpt2Model baseModel, Gpt2Model candidate, ITextTokenizer tokenizer, TrainingSpec spec, TokenShardReader validation)
    {
        if (spec.SampleTokens == 0)
        {
            return [];
        }

        var prompts = spec.SamplePrompts ?? DefaultPrompts(tokenizer, validation);
        var options = new GenerationOptions { MaxNewTokens = spec.SampleTokens, Temperature = 0.8, TopK = 40, Seed = spec.Seed };
        var context = Math.Min(baseModel.Config.NPositions, candidate.Config.NPositions);
        return prompts.Select(prompt =>
        {
            var ids = tokenizer.Encode(prompt).TakeLast(context / 2).ToArray();
            string Continue(Gpt2Model m) => tokenizer.Decode(TextGenerator.Generate(m, ids, options).Where(id => id != tokenizer.EndOfText));
            return new Sample(prompt, Continue(baseModel), Continue(candidate));
        }).ToList();
    }

    /// <summary>The first few tokens of the first two validation documents.</summary>
    private static List<string> DefaultPrompts(ITextTokenizer tokenizer, TokenShardReader validation)
    {
        var head = new int[(int)Math.Min(validation.Count, 4096)];
        validation.Read(0, head);
        var prompts = new List<string>();
        for (var i = 0; i < head.Length && prompts.Count < 2; i++)
        {
            if (head[i] == tokenizer.EndOfText && i + 1 < head.Length)
            {
                var doc = head.Skip(i + 1).TakeWhile(t => t != tokenizer.EndOfText).Take(tokenizer.VocabSize > 1000 ? 4 : 12).ToArray();
                if (doc.Length > 0)
                {
                    prompts.Add(tokenizer.Decode(doc));
                }
            }
        }

        return prompts.Count > 0 ? prompts : ["The "];
    }

    private static TrainingSummary Summary(string strategy, Gpt2Model model, long trainable, TrainingResult result, long? parameters = null) =>
        new(strategy, parameters ?? model.ParameterCount() - (model.HasAdapters ? trainable : 0), trainable, result.StepsRun, result.BestStep, result.StoppedEarly,
            result.TokensPerSecond,
            result.TrainLoss.Select(p => new double[] { p.Step, p.Loss }).ToList(),
            result.ValidationLoss.Select(p => new double[] { p.Step, p.Loss }).ToList());

    private static void WriteCandidate(string directory, Gpt2Model candidate, FineTuneReport report, TrainingResult candidateResult, TrainingResult? scratchResult, TrainingSpec spec, string baseModelName,
        string? mediaSamples)
    {
        var temp = directory + ".tmp-" + Guid.NewGuid().ToString("N");
        Directory.CreateDirectory(temp);
        if (mediaSamples is not null)
        {
            foreach (var file in report.SampleFiles)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(temp, file))!);
                File.Copy(Path.Combine(mediaSamples, file), Path.Combine(temp, file));
            }
        }

        candidate.SavePretrained(temp);
        if (candidate.HasAdapters)
        {
            SaveAdapter(Path.Combine(temp, "adapter"), candidate, spec, baseModelName);
        }

        File.WriteAllText(Path.Combine(temp, "metrics.json"), report.ToJson());
        File.WriteAllText(Path.Combine(temp, "report.md"), report.ToMarkdown());
        LossPlot.Save(Path.Combine(temp, "loss.png"), candidateResult, scratchResult);
        if (report.DataEfficiency is { } curve)
        {
            TransferPlot.Save(Path.Combine(temp, TransferPlot.FileName), curve);
        }

        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }

        Directory.Move(temp, directory);
    }

    /// <summary>
    /// The adapters alone, in PEFT's layout for <c>GPT2LMHeadModel</c>: <c>adapter_model.safetensors</c> with
    /// <c>base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight</c> ([r, in]) and <c>…lora_B.weight</c> ([out, r])
    /// — the names <c>PeftModel.save_pretrained</c> writes (its state-dict keys without the adapter name) — and an
    /// <c>adapter_config.json</c> that <c>PeftModel.from_pretrained</c> reads (GPT-2's projections are Conv1D:
    /// <c>fan_in_fan_out</c>). With other names PEFT would load with missing keys and the adapter would do nothing.
    /// </summary>
    public static void SaveAdapter(string directory, Gpt2Model model, TrainingSpec spec, string? baseModelName = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(spec);
        Directory.CreateDirectory(directory);
        var tensors = model.Projections()
            .Where(p => p.Projection.HasAdapter)
            .SelectMany(p => new[]
            {
                ($"base_model.model.transformer.{p.Name}.lora_A.weight", (Tensor)p.Projection.LoraA!.detach()),
                ($"base_model.model.transformer.{p.Name}.lora_B.weight", (Tensor)p.Projection.LoraB!.detach()),
            })
            .ToList();
        SafetensorsFile.Save(Path.Combine(directory, "adapter_model.safetensors"), tensors);
        var config = new JsonObject
        {
            ["base_model_name_or_path"] = baseModelName,
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["inference_mode"] = true,
            ["r"] = spec.LoraRank,
            ["lora_alpha"] = spec.LoraAlpha,
            ["lora_dropout"] = spec.LoraDropout,
            ["target_modules"] = new JsonArray("c_attn", "c_proj", "c_fc"),
            ["fan_in_fan_out"] = true,
            ["bias"] = "none",
        };
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), config.ToJsonString(Indented));
    }
}

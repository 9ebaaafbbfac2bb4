using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Serverless.Model.Training;

/// <summary>
/// The recipe of one training job, bound from JSON (camelCase fields). Every field is optional; the defaults are
/// documented on each property and in the README. <see cref="Validate"/> names every field that is wrong.
/// </summary>
public sealed record TrainingSpec
{
    /// <summary>The transfer-learning approach: <c>full</c>, <c>freeze</c>, <c>lora</c>, <c>distill</c> or <c>scratch</c>. <value>full</value>.</summary>
    public string Strategy { get; init; } = Strategies.Full;

    /// <summary>Optimizer steps. <value>200</value>.</summary>
    public int Steps { get; init; } = 200;

    /// <summary>Sequences per micro-batch. <value>8</value>.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Tokens per sequence; null means the model's context, capped at 256. <value>null</value>.</summary>
    public int? BlockSize { get; init; }

    /// <summary>Micro-batches whose gradients are summed per step. <value>1</value>.</summary>
    public int GradAccumulation { get; init; } = 1;

    /// <summary>Peak learning rate. <value>3e-4</value>.</summary>
    public double LearningRate { get; init; } = 3e-4;

    /// <summary>Learning rate at the end of the cosine decay; null means a tenth of <see cref="LearningRate"/>.</summary>
    public double? MinLearningRate { get; init; }

    /// <summary>Steps of linear warmup from zero. <value>20</value>.</summary>
    public int WarmupSteps { get; init; } = 20;

    /// <summary>AdamW weight decay, applied to matrices only (not biases, LayerNorms). <value>0.1</value>.</summary>
    public double WeightDecay { get; init; } = 0.1;

    /// <summary>Largest global gradient norm; 0 turns clipping off. <value>1.0</value>.</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary><c>freeze</c>: blocks frozen from the bottom (embeddings are always frozen). <value>2</value>.</summary>
    public int FreezeLayers { get; init; } = 2;

    /// <summary><c>lora</c>: adapter rank. <value>8</value>.</summary>
    public int LoraRank { get; init; } = 8;

    /// <summary><c>lora</c>: adapter scale numerator (scale = alpha / rank). <value>16</value>.</summary>
    public double LoraAlpha { get; init; } = 16;

    /// <summary><c>lora</c>: dropout on the adapter's input. <value>0</value>.</summary>
    public double LoraDropout { get; init; }

    /// <summary><c>distill</c>: the teacher's model directory; null means the base model. <value>null</value>.</summary>
    public string? Teacher { get; init; }

    /// <summary><c>distill</c>: student blocks, taken evenly spaced from the base; null means half the base's. <value>null</value>.</summary>
    public int? StudentLayers { get; init; }

    /// <summary><c>distill</c>: weight of the distillation term against cross-entropy. <value>0.5</value>.</summary>
    public double DistillAlpha { get; init; } = 0.5;

    /// <summary><c>distill</c>: softmax temperature for teacher and student. <value>2.0</value>.</summary>
    public double DistillTemperature { get; init; } = 2.0;

    /// <summary>Evaluate on the validation split every this many steps (and at the end). <value>50</value>.</summary>
    public int EvalEvery { get; init; } = 50;

    /// <summary>Most validation tokens scored per evaluation during training; null scores all. <value>65536</value>.</summary>
    public int? EvalTokens { get; init; } = 65536;

    /// <summary>Stop after this many evaluations without improvement; 0 never stops early. <value>5</value>.</summary>
    public int EarlyStoppingPatience { get; init; } = 5;

    /// <summary>Write a resumable checkpoint every this many steps. <value>100</value>.</summary>
    public int CheckpointEvery { get; init; } = 100;

    /// <summary>
    /// Arithmetic of training's matrix products: <c>fp32</c>, <c>bf16</c> (mixed precision: bfloat16 products, float32
    /// weights, optimizer and LayerNorms), or <c>auto</c> (bf16 where the CPU has AVX-512 BF16 or AMX, else fp32).
    /// Evaluation is always float32. <value>auto</value>.
    /// </summary>
    public string Precision { get; init; } = "auto";

    /// <summary>Seeds initialization, batches, dropout and samples (not the split: see <see cref="SplitSeed"/>). <value>1337</value>.</summary>
    public long Seed { get; init; } = 1337;

    /// <summary>
    /// Seeds the document split, on its own: two jobs on the same data with different <see cref="Seed"/>s have the same
    /// splits, so a champion is never scored on documents it trained on and perplexities stay comparable across runs.
    /// Change it only on purpose (a new split). <value>0</value>.
    /// </summary>
    public long SplitSeed { get; init; }

    /// <summary>Share of documents for validation (early stopping and the best weights), in (0, 0.5]. <value>0.1</value>.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Share of documents for test (every reported score, the gate, the champion comparison), in (0, 0.5]. <value>0.1</value>.</summary>
    public double TestFraction { get; init; } = 0.1;

    /// <summary>
    /// Minimal pairs scored with the base model and the candidate (does fine-tuning transfer or amplify a bias?):
    /// <c>builtin</c> (the shipped set), <c>none</c>, or a JSONL file of <c>{"group", "a", "b"}</c>. <value>builtin</value>.
    /// </summary>
    public string BiasProbes { get; init; } = Evaluation.BiasProbes.Builtin;

    /// <summary>
    /// The data-efficiency curve: shares of the training split's documents (nested subsets, each in (0, 1]) on which
    /// the candidate and the scratch baseline are trained again with this recipe and scored on the test split; the
    /// whole split is always the last point. Each fraction below 1 costs two more training runs. Null or empty: off.
    /// <value>null</value>.
    /// </summary>
    public IReadOnlyList<double>? DataFractions { get; init; }

    /// <summary>The curve's fractions below 1, ascending and distinct (the whole split is the job's own runs).</summary>
    public IReadOnlyList<double> CurveFractions() => (DataFractions ?? []).Where(f => f < 1).Distinct().Order().ToList();

    /// <summary>Also train the scratch baseline under the same budget and report it. <value>true</value>.</summary>
    public bool CompareWithScratch { get; init; } = true;

    /// <summary>Prompts for the samples in the report; null uses the starts of two validation documents.</summary>
    public IReadOnlyList<string>? SamplePrompts { get; init; }

    /// <summary>Tokens generated per sample. <value>80</value>.</summary>
    public int SampleTokens { get; init; } = 80;

    /// <summary>
    /// Images: the side every image is resized to (aspect kept, padded). Pre-training sets it (default 16); fine-tuning
    /// takes the base model's and refuses a different value. <value>null</value>.
    /// </summary>
    public int? ImageSize { get; init; }

    /// <summary>Images: 1 (grayscale) or 3 (RGB); as <see cref="ImageSize"/> (default 1). <value>null</value>.</summary>
    public int? Channels { get; init; }

    /// <summary>Images: quantization levels per sub-pixel, 2–256; as <see cref="ImageSize"/> (default 16). <value>null</value>.</summary>
    public int? Levels { get; init; }

    /// <summary>Audio: the sample rate every file is resampled to, 1000–48000 Hz; as <see cref="ImageSize"/> (default 8000). <value>null</value>.</summary>
    public int? SampleRate { get; init; }

    /// <summary>The media settings this spec asks of a new image or audio model (defaults filled in).</summary>
    public Media.MediaSettings MediaFor(string modality) => modality == Media.Modality.Image
        ? Media.MediaSettings.ForImages(ImageSize, Channels, Levels)
        : Media.MediaSettings.ForAudio(SampleRate);

    /// <summary>
    /// The problems of fine-tuning a model with <paramref name="media"/> settings (null: text) with this spec: a media
    /// field given must match the base model's, since the tokens and the context are the base's.
    /// </summary>
    public IReadOnlyList<string> MediaProblems(Media.MediaSettings? media)
    {
        var problems = new List<string>();
        void Same(int? given, int? model, string field, string what)
        {
            if (given is { } g && g != model)
            {
                problems.Add(model is null
                    ? $"{field}: is set, but the base model reads {media?.Modality ?? "text"}, which has no {what}."
                    : $"{field}: is {g}, but the base model was trained with {model}; fine-tuning keeps the base's {what} (omit the field, or pre-train a base with {g}).");
            }
        }

        Same(ImageSize, media?.ImageSize, "imageSize", "image size");
        Same(Channels, media?.Channels, "channels", "channels");
        Same(Levels, media?.Modality == Media.Modality.Image ? media.Levels : null, "levels", "quantization levels");
        Same(SampleRate, media?.SampleRate, "sampleRate", "sample rate");
        if (media?.Modality == Media.Modality.Image && BlockSize is { } block)
        {
            problems.Add($"blockSize: is {block}, but an image model trains on windows of exactly one image ({media.ValuesPerImage + 2} tokens with its start and class); omit blockSize.");
        }

        return problems;
    }

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        // Losses can be infinite (nothing measured yet) or NaN (a diverged run); they must still be written.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>
    /// As <see cref="JsonOptions"/>, but nulls are written: a field whose default is not null (<c>evalTokens</c>) set to
    /// null must read back as null, not as its default. For specs that travel between processes and checkpoints.
    /// </summary>
    internal static readonly JsonSerializerOptions ExactJsonOptions = new(JsonOptions) { DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    private static readonly HashSet<string> KnownFields = typeof(TrainingSpec).GetProperties()
        .Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)).ToHashSet(StringComparer.Ordinal);

    /// <summary>This spec with <paramref name="steps"/> steps, warmup shortened if it would not fit.</summary>
    public TrainingSpec WithSteps(int steps) => this with { Steps = steps, WarmupSteps = Math.Min(WarmupSteps, steps) };

    /// <summary>The block size used with a model whose context is <paramref name="context"/>.</summary>
    public int BlockSizeFor(int context) => Math.Min(BlockSize ?? Math.Min(context, 256), context);

    /// <summary>
    /// The block size used with <paramref name="config"/>: as <see cref="BlockSizeFor(int)"/>, except that an image
    /// model's default is its whole context, so every window holds at least one whole image with its start and class.
    /// </summary>
    public int BlockSizeFor(Gpt2.Gpt2Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Media?.Modality == Media.Modality.Image && BlockSize is null ? config.NPositions : BlockSizeFor(config.NPositions);
    }

    /// <summary>Every problem with the spec, each naming its field; empty when valid.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        void Check(bool ok, string field, string message)
        {
            if (!ok)
            {
                problems.Add($"{field}: {message}");
            }
        }

        static bool Finite(double x) => double.IsFinite(x);
        Check(Strategies.All.Contains(Strategy), "strategy", $"'{Strategy}' is not one of {string.Join(", ", Strategies.All)}.");
        Check(Steps is >= 1 and <= 10_000_000, "steps", $"is {Steps}; it must be between 1 and 10000000.");
        Check(BatchSize is >= 1 and <= 4096, "batchSize", $"is {BatchSize}; it must be between 1 and 4096.");
        Check(BlockSize is null or (>= 2 and <= 65536), "blockSize", $"is {BlockSize}; it must be between 2 and the model's context.");
        Check(GradAccumulation is >= 1 and <= 1024, "gradAccumulation", $"is {GradAccumulation}; it must be between 1 and 1024.");
        Check(Finite(LearningRate) && LearningRate > 0 && LearningRate <= 1, "learningRate", $"is {LearningRate}; it must be in (0, 1].");
        Check(MinLearningRate is null || (Finite(MinLearningRate.Value) && MinLearningRate >= 0 && MinLearningRate <= LearningRate),
            "minLearningRate", $"is {MinLearningRate}; it must be between 0 and learningRate.");
        Check(WarmupSteps >= 0 && WarmupSteps <= Steps, "warmupSteps", $"is {WarmupSteps}; it must be between 0 and steps ({Steps}).");
        Check(Finite(WeightDecay) && WeightDecay is >= 0 and <= 1, "weightDecay", $"is {WeightDecay}; it must be in [0, 1].");
        Check(Finite(GradClip) && GradClip >= 0, "gradClip", $"is {GradClip}; it must be 0 (off) or more.");
        Check(FreezeLayers >= 0, "freezeLayers", $"is {FreezeLayers}; it must be 0 or more.");
        Check(LoraRank is >= 1 and <= 1024, "loraRank", $"is {LoraRank}; it must be between 1 and 1024.");
        Check(Finite(LoraAlpha) && LoraAlpha > 0, "loraAlpha", $"is {LoraAlpha}; it must be more than 0.");
        Check(Finite(LoraDropout) && LoraDropout is >= 0 and < 1, "loraDropout", $"is {LoraDropout}; it must be in [0, 1).");
        Check(StudentLayers is null or >= 1, "studentLayers", $"is {StudentLayers}; it must be 1 or more.");
        Check(Finite(DistillAlpha) && DistillAlpha is >= 0 and <= 1, "distillAlpha", $"is {DistillAlpha}; it must be in [0, 1].");
        Check(Finite(DistillTemperature) && DistillTemperature > 0, "distillTemperature", $"is {DistillTemperature}; it must be more than 0.");
        Check(Precision is "auto" or "fp32" or "bf16", "precision", $"'{Precision}' is not one of auto, fp32, bf16.");
        Check(EvalEvery >= 1, "evalEvery", $"is {EvalEvery}; it must be 1 or more.");
        Check(EvalTokens is null or >= 2, "evalTokens", $"is {EvalTokens}; it must be 2 or more, or null for all.");
        Check(EarlyStoppingPatience >= 0, "earlyStoppingPatience", $"is {EarlyStoppingPatience}; it must be 0 (off) or more.");
        Check(CheckpointEvery >= 1, "checkpointEvery", $"is {CheckpointEvery}; it must be 1 or more.");
        Check(Finite(ValidationFraction) && ValidationFraction is > 0 and <= 0.5, "validationFraction", $"is {ValidationFraction}; it must be in (0, 0.5].");
        Check(Finite(TestFraction) && TestFraction is > 0 and <= 0.5, "testFraction", $"is {TestFraction}; it must be in (0, 0.5].");
        Check(!(ValidationFraction + TestFraction >= 0.9), "testFraction", $"with validationFraction {ValidationFraction} leaves {1 - ValidationFraction - TestFraction:0.##} of the documents for training; keep at least 0.1.");
        Check(DataFractions is null || DataFractions.All(f => Finite(f) && f is > 0 and <= 1), "dataFractions",
            $"[{string.Join(", ", DataFractions ?? [])}] must each be in (0, 1] (shares of the training split's documents).");
        Check(DataFractions is null || DataFractions.Count <= 10, "dataFractions", $"has {DataFractions?.Count} fractions; at most 10 (each costs two training runs).");
        Check(DataFractions is not { Count: > 0 } || (CompareWithScratch && Strategy != Strategies.Scratch), "dataFractions",
            "the curve compares the candidate with scratch: it needs compareWithScratch true and a strategy other than scratch.");
        Check(SampleTokens is >= 0 and <= 4096, "sampleTokens", $"is {SampleTokens}; it must be between 0 and 4096.");
        Check(ImageSize is null or (>= 4 and <= 256), "imageSize", $"is {ImageSize}; it must be between 4 and 256.");
        Check(Channels is null or 1 or 3, "channels", $"is {Channels}; use 1 (grayscale) or 3 (RGB).");
        Check(Levels is null or (>= 2 and <= 256), "levels", $"is {Levels}; it must be between 2 and 256.");
        Check(SampleRate is null or (>= 1000 and <= 48000), "sampleRate", $"is {SampleRate}; it must be between 1000 and 48000 Hz.");
        return problems;
    }

    /// <summary>Throws <see cref="SpecException"/> listing every problem, if any.</summary>
    public TrainingSpec Validate(string source = "spec")
    {
        var problems = Problems();
        return problems.Count == 0 ? this : throw new SpecException(source, problems);
    }

    /// <summary>Binds and validates a spec from JSON; unknown fields are errors (a typo must not be silently ignored).</summary>
    public static TrainingSpec Parse(string json, string source = "spec")
    {
        JsonObject? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject;
        }
        catch (JsonException e)
        {
            throw new SpecException(source, [$"not valid JSON: {e.Message}"]);
        }

        if (node is null)
        {
            throw new SpecException(source, ["must be a JSON object of spec fields."]);
        }

        var unknown = node.Select(p => p.Key).Where(k => !KnownFields.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new SpecException(source, unknown.Select(k => $"{k}: unknown field{Suggest(k)}.").ToList());
        }

        TrainingSpec? spec;
        try
        {
            spec = node.Deserialize<TrainingSpec>(JsonOptions);
        }
        catch (JsonException e)
        {
            var field = e.Path?.TrimStart('$', '.') is { Length: > 0 } path ? path : "spec";
            throw new SpecException(source, [$"{field}: has the wrong type ({FirstSentence(e.Message)})"]);
        }

        return (spec ?? new TrainingSpec()).Validate(source);
    }

    /// <summary>Reads a spec file.</summary>
    public static TrainingSpec Load(string path) =>
        File.Exists(path) ? Parse(File.ReadAllText(path), path) : throw new SpecException(path, ["the file does not exist."]);

    /// <summary>The spec as JSON (camelCase, nulls omitted).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>The spec as JSON with every field, nulls included, so that <see cref="Parse"/> gives this spec back.</summary>
    public string ToExactJson() => JsonSerializer.Serialize(this, ExactJsonOptions);

    private static string Suggest(string field)
    {
        var best = KnownFields.OrderBy(k => Distance(k.ToLowerInvariant(), field.ToLowerInvariant())).First();
        return Distance(best.ToLowerInvariant(), field.ToLowerInvariant()) <= 3 ? $" (did you mean '{best}'?)" : "";
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
        }

        return d[a.Length, b.Length];
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}

/// <summary>A spec that cannot be used; the message lists every problem by field.</summary>
public sealed class SpecException : Exception
{
    /// <summary>Creates the exception for <paramref name="source"/> with its problems.</summary>
    public SpecException(string source, IReadOnlyList<string> problems)
        : base($"{source} is invalid: " + string.Join("; ", problems ?? []))
    {
        Problems = problems ?? [];
    }

    /// <summary>Creates the exception.</summary>
    public SpecException() => Problems = [];

    /// <summary>Creates the exception.</summary>
    public SpecException(string message) : base(message) => Problems = [message];

    /// <summary>Creates the exception.</summary>
    public SpecException(string message, Exception inner) : base(message, inner) => Problems = [message];

    /// <summary>Each problem, naming its field.</summary>
    public IReadOnlyList<string> Problems { get; }
}

/// <summary>The strategy names.</summary>
public static class Strategies
{
    /// <summary>Fine-tune every parameter.</summary>
    public const string Full = "full";

    /// <summary>Feature extraction: embeddings and the lowest blocks frozen.</summary>
    public const string Freeze = "freeze";

    /// <summary>Low-rank adapters on the projections; merged on export.</summary>
    public const string Lora = "lora";

    /// <summary>Knowledge distillation from a teacher into a smaller student.</summary>
    public const string Distill = "distill";

    /// <summary>Random initialization, the same budget: the baseline.</summary>
    public const string Scratch = "scratch";

    /// <summary>All strategy names.</summary>
    public static IReadOnlyList<string> All { get; } = [Full, Freeze, Lora, Distill, Scratch];
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Serverless.Model.Evaluation;
using Serverless.Model.Training;

namespace Serverless.Model.FineTuning;

/// <summary>How one model scored on the job's validation split.</summary>
/// <param name="Loss">Mean cross-entropy, nats/token.</param>
/// <param name="Perplexity">exp(loss).</param>
/// <param name="BitsPerByte">Bits per UTF-8 byte of validation text.</param>
/// <param name="Tokens">Tokens predicted.</param>
public sealed record ModelScore(
    [property: JsonPropertyName("loss")] double Loss,
    [property: JsonPropertyName("perplexity")] double Perplexity,
    [property: JsonPropertyName("bits_per_byte")] double? BitsPerByte,
    [property: JsonPropertyName("tokens")] long Tokens)
{
    /// <summary>Image models: bits per sub-pixel (nats per value token / ln 2; start and class tokens are not scored).</summary>
    [JsonPropertyName("bits_per_dim")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BitsPerDim { get; init; }

    /// <summary>Audio models: bits per μ-law sample (nats per sample token / ln 2).</summary>
    [JsonPropertyName("bits_per_sample")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? BitsPerSample { get; init; }

    internal static ModelScore From(EvaluationResult r) => new(r.Loss, r.Perplexity, r.BitsPerByte, r.Tokens);

    /// <summary>The score with the bits of <paramref name="modality"/>: per byte (text), per dimension (image) or per sample (audio).</summary>
    public static ModelScore From(EvaluationResult r, string modality)
    {
        ArgumentNullException.ThrowIfNull(r);
        return modality switch
        {
            Media.Modality.Image => new ModelScore(r.Loss, r.Perplexity, null, r.Tokens) { BitsPerDim = r.Loss / Math.Log(2) },
            Media.Modality.Audio => new ModelScore(r.Loss, r.Perplexity, null, r.Tokens) { BitsPerSample = r.Loss / Math.Log(2) },
            _ => From(r),
        };
    }

    /// <summary>The bits this score reports for its modality (per byte, dimension or sample).</summary>
    [JsonIgnore] public double? Bits => BitsPerDim ?? BitsPerSample ?? BitsPerByte;
}

/// <summary>
/// A sample-quality score that needs no downloaded model: for class-conditional images the accuracy with which a small
/// classifier, trained on the job's real training images, recognises the asked-for class in each model's samples; for
/// audio the mean log-spectral distance (dB) between each model's clips and held-out real clips.
/// </summary>
/// <param name="Metric"><c>class_accuracy</c> or <c>log_spectral_distance_db</c>.</param>
/// <param name="Description">What exactly was measured, and its limits.</param>
/// <param name="HigherIsBetter">Whether a higher value is better.</param>
/// <param name="Real">The same measure on real held-out data: the ceiling (accuracy) or floor (distance) to read the others against.</param>
/// <param name="Base">The base model's samples.</param>
/// <param name="Scratch">The scratch model's samples; null without a scratch run.</param>
/// <param name="Candidate">The candidate's samples.</param>
/// <param name="SamplesPerModel">Samples generated per model.</param>
public sealed record SampleQuality(
    [property: JsonPropertyName("metric")] string Metric,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("higher_is_better")] bool HigherIsBetter,
    [property: JsonPropertyName("real")] double Real,
    [property: JsonPropertyName("base")] double Base,
    [property: JsonPropertyName("scratch")] double? Scratch,
    [property: JsonPropertyName("candidate")] double Candidate,
    [property: JsonPropertyName("samples_per_model")] int SamplesPerModel);

/// <summary>How a trained model (candidate or scratch) was trained.</summary>
/// <param name="Strategy">The strategy.</param>
/// <param name="Parameters">Parameters of the trained model.</param>
/// <param name="TrainableParameters">Parameters that received updates.</param>
/// <param name="StepsRun">Steps run.</param>
/// <param name="BestStep">Step of the best validation loss (the weights kept).</param>
/// <param name="StoppedEarly">Whether early stopping ended training.</param>
/// <param name="TokensPerSecond">Training throughput.</param>
/// <param name="TrainLoss">Training loss per step.</param>
/// <param name="ValidationLoss">Validation loss per evaluation.</param>
public sealed record TrainingSummary(
    [property: JsonPropertyName("strategy")] string Strategy,
    [property: JsonPropertyName("parameters")] long Parameters,
    [property: JsonPropertyName("trainable_parameters")] long TrainableParameters,
    [property: JsonPropertyName("steps_run")] int StepsRun,
    [property: JsonPropertyName("best_step")] int BestStep,
    [property: JsonPropertyName("stopped_early")] bool StoppedEarly,
    [property: JsonPropertyName("tokens_per_second")] double TokensPerSecond,
    [property: JsonPropertyName("train_loss")] IReadOnlyList<double[]> TrainLoss,
    [property: JsonPropertyName("validation_loss")] IReadOnlyList<double[]> ValidationLoss);

/// <summary>A generated sample from one prompt, by base and candidate.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Base">The base model's continuation.</param>
/// <param name="Candidate">The candidate's continuation.</param>
public sealed record Sample(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("base")] string Base,
    [property: JsonPropertyName("candidate")] string Candidate);

/// <summary>
/// The evaluation report of a job, written as <c>metrics.json</c> (this record, schema <c>serverless.metrics/v1</c>)
/// and <c>report.md</c>. Scores are on the job's test split (<see cref="ScoresSplit"/>), which neither training nor
/// early stopping saw; the training histories' validation losses are on the validation split
/// (<see cref="EarlyStoppingSplit"/>). <c>scratch</c> is null when <c>compareWithScratch</c> is off.
/// </summary>
public sealed record FineTuneReport(
    [property: JsonPropertyName("schema")] string Schema,
    [property: JsonPropertyName("strategy")] string Strategy,
    [property: JsonPropertyName("tokenizer")] string Tokenizer,
    [property: JsonPropertyName("train_tokens")] long TrainTokens,
    [property: JsonPropertyName("validation_tokens")] long ValidationTokens,
    [property: JsonPropertyName("base")] ModelScore Base,
    [property: JsonPropertyName("candidate")] ModelScore Candidate,
    [property: JsonPropertyName("scratch")] ModelScore? Scratch,
    [property: JsonPropertyName("improvement_over_base")] double ImprovementOverBase,
    [property: JsonPropertyName("improvement_over_scratch")] double? ImprovementOverScratch,
    [property: JsonPropertyName("candidate_training")] TrainingSummary CandidateTraining,
    [property: JsonPropertyName("scratch_training")] TrainingSummary? ScratchTraining,
    [property: JsonPropertyName("samples")] IReadOnlyList<Sample> Samples,
    [property: JsonPropertyName("spec")] TrainingSpec Spec)
{
    /// <summary>The bias probes per group (base, candidate, shift, flips); empty when the spec turns them off.</summary>
    [JsonPropertyName("bias")]
    public IReadOnlyList<Evaluation.BiasResult> Bias { get; init; } = [];

    /// <summary>How much sooner the candidate reached the scratch baseline's best validation loss; null without a scratch run.</summary>
    [JsonPropertyName("speedup")]
    public TrainingSpeedup? Speedup { get; init; }

    /// <summary>The data-efficiency curve (spec <c>dataFractions</c>); null when it was not asked for.</summary>
    [JsonPropertyName("data_efficiency")]
    public DataEfficiency? DataEfficiency { get; init; }

    /// <summary>Tokens in the test split, the one every score here is computed on.</summary>
    [JsonPropertyName("test_tokens")]
    public long TestTokens { get; init; }

    /// <summary>The split the scores (base, champion, candidate, scratch, improvements) come from: <c>test</c>. Null in reports written before there were three splits.</summary>
    [JsonPropertyName("scores_split")]
    public string? ScoresSplit { get; init; }

    /// <summary>The split early stopping and the best weights were chosen on (the training histories' validation losses): <c>validation</c>.</summary>
    [JsonPropertyName("early_stopping_split")]
    public string? EarlyStoppingSplit { get; init; }

    /// <summary>The registry's champion at training time, scored on the same split; null when there was none.</summary>
    [JsonPropertyName("champion")]
    public ModelScore? Champion { get; init; }

    /// <summary>The modality: <c>text</c>, <c>image</c> or <c>audio</c>.</summary>
    [JsonPropertyName("modality")]
    public string Modality { get; init; } = Media.Modality.Text;

    /// <summary>Image and audio jobs: the sample-quality score of base, scratch and candidate; null for text or when it cannot be computed.</summary>
    [JsonPropertyName("sample_quality")]
    public SampleQuality? SampleQuality { get; init; }

    /// <summary>Image and audio jobs: the sample files written beside the report (<c>samples.png</c>, <c>samples/*.wav</c>).</summary>
    [JsonPropertyName("sample_files")]
    public IReadOnlyList<string> SampleFiles { get; init; } = [];

    /// <summary>The schema identifier.</summary>
    public const string SchemaName = "serverless.metrics/v1";

    private static readonly JsonSerializerOptions Options = new(TrainingSpec.JsonOptions) { PropertyNamingPolicy = null };

    /// <summary>metrics.json text.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Options);

    /// <summary>Reads a metrics.json.</summary>
    public static FineTuneReport FromJson(string json) =>
        JsonSerializer.Deserialize<FineTuneReport>(json, Options) ?? throw new InvalidDataException("metrics.json is empty.");

    /// <summary>The short human-readable report.</summary>
    public string ToMarkdown()
    {
        var md = new StringBuilder();
        md.AppendLine($"# Fine-tuning report ({Strategy})").AppendLine();
        md.AppendLine(ScoresSplit is null
            ? $"Validation split: {ValidationTokens:N0} tokens ({Tokenizer} tokenizer); training split: {TrainTokens:N0} tokens."
            : $"Scores on the {ScoresSplit} split: {TestTokens:N0} tokens ({Tokenizer} tokenizer), held out from training and early stopping; " +
              $"{EarlyStoppingSplit} split (early stopping, best weights): {ValidationTokens:N0} tokens; training split: {TrainTokens:N0} tokens.").AppendLine();
        var bitsName = Modality switch { Media.Modality.Image => "bits/dim", Media.Modality.Audio => "bits/sample", _ => "bits/byte" };
        md.AppendLine($"| model | loss (nats/token) | perplexity | {bitsName} |");
        md.AppendLine("|---|---:|---:|---:|");
        Row("base (zero-shot)", Base);
        if (Champion is not null)
        {
            Row("champion (registry)", Champion);
        }

        if (Scratch is not null)
        {
            Row("scratch (same budget)", Scratch);
        }

        Row($"candidate ({Strategy})", Candidate);
        md.AppendLine();
        md.AppendLine($"Perplexity improvement over base: {ImprovementOverBase:P1}" +
            (ImprovementOverScratch is { } s ? $"; over scratch: {s:P1}." : "."));
        md.AppendLine($"Candidate: {CandidateTraining.TrainableParameters:N0} of {CandidateTraining.Parameters:N0} parameters trained, " +
            $"{CandidateTraining.StepsRun} steps (best at {CandidateTraining.BestStep}{(CandidateTraining.StoppedEarly ? ", stopped early" : "")}), " +
            $"{CandidateTraining.TokensPerSecond:N0} tokens/s.").AppendLine();
        if (Speedup is not null)
        {
            md.AppendLine(Speedup.Describe()).AppendLine();
        }

        if (DataEfficiency is { } curve)
        {
            md.AppendLine("Data efficiency: candidate and scratch trained again with the same recipe on nested subsets of the training split " +
                "(the same validation split stops them early; the test split scores them):").AppendLine();
            md.AppendLine("| share of the training data | documents | training tokens | candidate perplexity | scratch perplexity |");
            md.AppendLine("|---:|---:|---:|---:|---:|");
            foreach (var p in curve.Points)
            {
                md.AppendLine(FormattableString.Invariant($"| {p.Fraction:0.##%} | {p.Documents:N0} | {p.TrainTokens:N0} | {p.Candidate.Perplexity:F3} | {p.Scratch.Perplexity:F3} |"));
            }

            md.AppendLine().AppendLine(curve.Describe()).AppendLine();
            md.AppendLine("![data efficiency](transfer.png)").AppendLine();
        }

        if (Bias.Count > 0)
        {
            md.AppendLine("Bias probes (minimal pairs; mean log p(a) − log p(b) in nats, base → candidate):").AppendLine();
            md.AppendLine("| group | pairs | base | candidate | shift | preferences flipped |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var b in Bias)
            {
                md.AppendLine(FormattableString.Invariant($"| {b.Group} | {b.Pairs} | {b.BaseMeanDifference:F3} | {b.CandidateMeanDifference:F3} | {b.Shift:+0.000;-0.000;0.000} | {b.FlipShare:P0} |"));
            }

            md.AppendLine();
        }

        if (SampleQuality is { } quality)
        {
            md.AppendLine($"Sample quality ({quality.Metric}, {(quality.HigherIsBetter ? "higher" : "lower")} is better, {quality.SamplesPerModel} samples per model): " +
                FormattableString.Invariant($"real held-out data {quality.Real:0.###}, base {quality.Base:0.###}, ") +
                (quality.Scratch is { } sq ? FormattableString.Invariant($"scratch {sq:0.###}, ") : "") +
                FormattableString.Invariant($"candidate {quality.Candidate:0.###}. ") + quality.Description).AppendLine();
        }

        if (SampleFiles.Count > 0)
        {
            md.AppendLine("## Samples").AppendLine();
            foreach (var file in SampleFiles)
            {
                md.AppendLine(file.EndsWith(".png", StringComparison.Ordinal) ? $"![samples]({file})" : $"- [{file}]({file})");
            }

            md.AppendLine();
        }

        if (Samples.Count > 0)
        {
            md.AppendLine("## Samples").AppendLine();
            foreach (var sample in Samples)
            {
                md.AppendLine($"**Prompt:** `{sample.Prompt.ReplaceLineEndings(" ")}`").AppendLine();
                md.AppendLine("Base:").AppendLine().AppendLine("```").AppendLine(sample.Prompt + sample.Base).AppendLine("```");
                md.AppendLine("Candidate:").AppendLine().AppendLine("```").AppendLine(sample.Prompt + sample.Candidate).AppendLine("```").AppendLine();
            }
        }

        md.AppendLine("![loss curves](loss.png)");
        return md.ToString();

        void Row(string name, ModelScore score) =>
            md.AppendLine($"| {name} | {score.Loss:F4} | {score.Perplexity:F3} | {(score.Bits is { } b ? b.ToString("F4", System.Globalization.CultureInfo.InvariantCulture) : "–")} |");
    }
}

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
    internal static ModelScore From(EvaluationResult r) => new(r.Loss, r.Perplexity, r.BitsPerByte, r.Tokens);
}

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
        md.AppendLine("| model | loss (nats/token) | perplexity | bits/byte |");
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
            md.AppendLine($"| {name} | {score.Loss:F4} | {score.Perplexity:F3} | {(score.BitsPerByte is { } b ? b.ToString("F4") : "–")} |");
    }
}

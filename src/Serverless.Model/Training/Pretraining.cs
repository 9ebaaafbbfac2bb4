using System.Text.Json;
using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Training;

/// <summary>What pre-training produced, written as <c>pretraining.json</c> beside the model.</summary>
/// <param name="Size">The size preset.</param>
/// <param name="Parameters">Parameter count.</param>
/// <param name="Steps">Steps run.</param>
/// <param name="TrainTokens">Tokens in the training split.</param>
/// <param name="Validation">Score on the held-out split.</param>
/// <param name="TokensPerSecond">Training throughput.</param>
public sealed record PretrainingResult(string Size, long Parameters, int Steps, long TrainTokens, EvaluationResult Validation, double TokensPerSecond);

/// <summary>Trains a base model from scratch on a corpus and saves it as a model directory.</summary>
public static class Pretraining
{
    /// <summary>The size presets.</summary>
    public static IReadOnlyList<string> Sizes { get; } = ["tiny", "small"];

    /// <summary>The model shape of a size preset for a tokenizer.</summary>
    public static Gpt2Config ConfigFor(string size, string tokenizer)
    {
        var tok = TokenizerRegistry.Get(tokenizer);
        var config = new Gpt2Config
        {
            VocabSize = tok.VocabSize,
            BosTokenId = tok.EndOfText,
            EosTokenId = tok.EndOfText,
            Tokenizer = tok.Name,
        };
        return size switch
        {
            "tiny" => config with { NLayer = 4, NHead = 4, NEmbd = 128, NPositions = 128 },
            "small" => config with { NLayer = 6, NHead = 8, NEmbd = 256, NPositions = 256 },
            _ => throw new ArgumentException($"Unknown size '{size}'; use {string.Join(" or ", Sizes)}.", nameof(size)),
        };
    }

    /// <summary>
    /// Prepares <paramref name="corpus"/>, trains a <paramref name="size"/> model from scratch with
    /// <paramref name="spec"/>, and saves it to <paramref name="outputDirectory"/>. Checkpoints go to
    /// <c>{out}.work/</c>, so an interrupted run resumes.
    /// </summary>
    public static PretrainingResult Run(
        IReadOnlyList<string> corpus, string outputDirectory, string size, string tokenizer, TrainingSpec spec,
        Action<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var config = ConfigFor(size, tokenizer);
        var work = outputDirectory.TrimEnd('/', '\\') + ".work";
        var prepared = Path.Combine(work, "prepared");
        var tok = TokenizerRegistry.Get(tokenizer);
        var manifestPath = Path.Combine(prepared, "manifest.json");
        var manifest = File.Exists(manifestPath)
            ? JsonSerializer.Deserialize<PreparedDataset>(File.ReadAllText(manifestPath))!
            : new DatasetPreparer(new DatasetReader(), tok, new DocumentSplit(spec.SplitSeed, spec.ValidationFraction, spec.TestFraction)).Prepare(corpus, prepared);
        File.WriteAllText(manifestPath, JsonSerializer.Serialize(manifest));

        using var train = TokenShardReader.Open(Path.Combine(prepared, DatasetPreparer.TrainFile));
        using var validation = TokenShardReader.Open(Path.Combine(prepared, DatasetPreparer.ValidationFile));
        using var model = new Gpt2Model(config, spec.Seed);
        var scratch = spec with { Strategy = Strategies.Scratch };
        var result = TrainingLoop.Train(model, StrategySetup.Apply(model, scratch), scratch, train, validation, new TrainingOptions
        {
            CheckpointDirectory = Path.Combine(work, "checkpoints"),
            Progress = progress,
            Cancellation = cancellation,
        });

        var score = Evaluator.Evaluate(model, validation, spec.BlockSizeFor(config.NPositions), manifest.ScoredValidationBytes);
        var temp = outputDirectory.TrimEnd('/', '\\') + ".tmp-" + Guid.NewGuid().ToString("N");
        model.SavePretrained(temp);
        var summary = new PretrainingResult(size, model.ParameterCount(), result.StepsRun, manifest.TrainTokens, score, result.TokensPerSecond);
        File.WriteAllText(Path.Combine(temp, "pretraining.json"), JsonSerializer.Serialize(summary, TrainingSpec.JsonOptions));
        if (Directory.Exists(outputDirectory))
        {
            Directory.Delete(outputDirectory, recursive: true);
        }

        Directory.Move(temp, outputDirectory);
        Directory.Delete(work, recursive: true);
        return summary;
    }
}

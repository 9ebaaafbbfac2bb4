using System.Text.Json;
using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;
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

    /// <summary>
    /// The model shape of a size preset for a tokenizer, or for image or audio <paramref name="media"/>. An image model's
    /// context is widened (to a multiple of 64) to hold a whole image with its start and class tokens.
    /// </summary>
    public static Gpt2Config ConfigFor(string size, string tokenizer, MediaSettings? media = null)
    {
        Gpt2Config config;
        if (media is not null)
        {
            config = new Gpt2Config { VocabSize = media.VocabSize, BosTokenId = media.StartToken, EosTokenId = media.StartToken, Tokenizer = media.Modality, Media = media };
        }
        else
        {
            var tok = TokenizerRegistry.Get(tokenizer);
            config = new Gpt2Config { VocabSize = tok.VocabSize, BosTokenId = tok.EndOfText, EosTokenId = tok.EndOfText, Tokenizer = tok.Name };
        }

        config = size switch
        {
            "tiny" => config with { NLayer = 4, NHead = 4, NEmbd = 128, NPositions = 128 },
            "small" => config with { NLayer = 6, NHead = 8, NEmbd = 256, NPositions = 256 },
            _ => throw new ArgumentException($"Unknown size '{size}'; use {string.Join(" or ", Sizes)}.", nameof(size)),
        };
        return media?.Modality == Modality.Image
            ? config with { NPositions = Math.Max(config.NPositions, (media.ValuesPerImage + 2 + 63) / 64 * 64) }
            : config;
    }

    /// <summary>
    /// Prepares <paramref name="corpus"/>, trains a <paramref name="size"/> model from scratch with
    /// <paramref name="spec"/>, and saves it to <paramref name="outputDirectory"/>. Checkpoints go to
    /// <c>{out}.work/</c>, so an interrupted run resumes.
    /// </summary>
    /// <param name="corpus">Corpus files.</param>
    /// <param name="outputDirectory">The model directory to write.</param>
    /// <param name="size">The size preset.</param>
    /// <param name="tokenizer">The text tokenizer (ignored for image and audio).</param>
    /// <param name="spec">The recipe.</param>
    /// <param name="progress">Training progress.</param>
    /// <param name="cancellation">Stops training at the next step (a checkpoint lets a rerun resume).</param>
    /// <param name="media">Image or audio settings; null for text.</param>
    /// <param name="root">The corpus folder whose sub-folders are classes (image and audio); null for none.</param>
    public static PretrainingResult Run(
        IReadOnlyList<string> corpus, string outputDirectory, string size, string tokenizer, TrainingSpec spec,
        Action<TrainingProgress>? progress = null, MediaSettings? media = null, string? root = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var config = ConfigFor(size, tokenizer, media);
        var work = outputDirectory.TrimEnd('/', '\\') + ".work";
        var prepared = Path.Combine(work, "prepared");
        var manifestPath = Path.Combine(prepared, "manifest.json");
        var manifest = File.Exists(manifestPath)
            ? JsonSerializer.Deserialize<PreparedDataset>(File.ReadAllText(manifestPath))!
            : DocumentSources.Preparer(config, new DocumentSplit(spec.SplitSeed, spec.ValidationFraction, spec.TestFraction), root).Prepare(corpus, prepared);
        File.WriteAllText(manifestPath, JsonSerializer.Serialize(manifest));
        if (media is not null)
        {
            config = config with { Media = media with { Classes = manifest.Classes ?? [] } };
        }

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

        var score = media is null
            ? Evaluator.Evaluate(model, validation, spec.BlockSizeFor(config), manifest.ScoredValidationBytes)
            : Evaluator.Evaluate(model, validation, TrainingLoop.Windows(config, spec, train).BlockSize, scoredBelow: media.Levels);
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

using System.CommandLine;
using System.Text.Json;
using Serverless.Model.Media;
using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary><c>tune pretrain</c>: train a base model from scratch on a corpus.</summary>
internal static class PretrainCommand
{
    public static Command Create()
    {
        var corpus = new Option<string[]>("--corpus")
        {
            Description = "Corpus files or a folder: text (.txt, .jsonl, or either gzipped), images (.png, .jpg) or audio (.wav); in a folder, sub-folders are classes.",
            Required = true, AllowMultipleArgumentsPerToken = true,
        };
        var modality = new Option<string?>("--modality") { Description = "text, image or audio (default: inferred from the files; a mix is an error)." };
        modality.AcceptOnlyFromAmong([.. Modality.All]);
        var output = new Option<string>("--out") { Description = "Model directory to write.", Required = true };
        var size = new Option<string>("--size") { Description = "tiny (4 layers, 128 wide, context 128) or small (6 layers, 256 wide, context 256).", DefaultValueFactory = _ => "tiny" };
        size.AcceptOnlyFromAmong([.. Pretraining.Sizes]);
        var tokenizer = new Option<string>("--tokenizer") { Description = "Text: bytes or gpt2.", DefaultValueFactory = _ => "bytes" };
        tokenizer.AcceptOnlyFromAmong("bytes", "gpt2");
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (default: the spec's, or 500)." };
        var spec = new Option<FileInfo?>("--spec") { Description = "A training spec JSON file." };
        var json = new Option<bool>("--json") { Description = "JSON lines of progress, then the result as JSON." };
        var command = new Command("pretrain", "Train a base model from scratch on a corpus.") { corpus, output, modality, size, tokenizer, steps, spec, json };
        command.SetAction((parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var trainingSpec = SpecOptions.Load(parse.GetValue(spec), parse.GetValue(steps), defaults: DefaultSpec);
            using var work = new CorpusFiles(parse.GetValue(output)! + ".corpus");
            var (files, root) = work.MaterializePaths(parse.GetValue(corpus)!);
            string kind;
            try
            {
                kind = parse.GetValue(modality) ?? Modality.Infer(files);
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message);
            }

            var media = kind == Modality.Text ? null : trainingSpec.MediaFor(kind);
            var result = new ProgressView(writer, parse.GetValue(json)).Run("pretrain", report =>
                Pretraining.Run(files, parse.GetValue(output)!, parse.GetValue(size)!, parse.GetValue(tokenizer)!, trainingSpec, p => report("pretrain", p), media, root, cancellation));
            writer.WriteLine(parse.GetValue(json)
                ? JsonSerializer.Serialize(result)
                : $"Saved {result.Parameters:N0}-parameter {kind} model to {parse.GetValue(output)}: validation loss {result.Validation.Loss:F3}, perplexity {result.Validation.Perplexity:F2}" +
                  (media is null ? "" : $", {media.BitsName} {result.Validation.Loss / Math.Log(2):F3}") + $", {result.TokensPerSecond:N0} tokens/s.");
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>Pre-training defaults: a higher learning rate and larger batches than fine-tuning.</summary>
    public static TrainingSpec DefaultSpec { get; } = new()
    {
        Strategy = Strategies.Scratch, Steps = 500, BatchSize = 16, LearningRate = 2e-3, WarmupSteps = 30, EvalEvery = 250,
        CheckpointEvery = 250, EarlyStoppingPatience = 0, ValidationFraction = 0.02, TestFraction = 0.02, WeightDecay = 0.1,
    };
}

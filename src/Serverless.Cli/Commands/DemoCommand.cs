using System.CommandLine;
using System.Reflection;
using Serverless.Model.FineTuning;
using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary>
/// <c>tune demo</c>: the whole transfer-learning story on one machine. Pre-trains a tiny byte-level base model on
/// the shipped King James Bible (once; cached in <c>.tune/base-models/demo-base</c>), fine-tunes it on the shipped
/// fortunes, and prints base / scratch / candidate perplexity and samples.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var home = new Option<string>("--home") { Description = "Working folder.", DefaultValueFactory = _ => ".tune" };
        var steps = new Option<int?>("--steps") { Description = "Fine-tuning steps (default 150)." };
        var pretrainSteps = new Option<int?>("--pretrain-steps") { Description = "Pre-training steps on the first run (default 600)." };
        var json = new Option<bool>("--json") { Description = "JSON lines of progress, then metrics.json's content." };
        var command = new Command("demo", "Pre-train a tiny base model on the shipped Bible (first run only), fine-tune it on fortunes, and compare with training from scratch.")
        {
            home, steps, pretrainSteps, json,
        };
        command.SetAction((parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var root = parse.GetValue(home)!;
            var view = new ProgressView(writer, parse.GetValue(json));
            var baseDirectory = Path.Combine(root, "base-models", "demo-base");
            using var corpus = new CorpusFiles(Path.Combine(root, "demo-corpus"));
            if (!File.Exists(Path.Combine(baseDirectory, "model.safetensors")))
            {
                if (!parse.GetValue(json))
                {
                    writer.WriteLine($"First run: pre-training the demo base model on the King James Bible into {baseDirectory} (about two minutes)…");
                }

                var bible = corpus.Write("kjv.txt", () => Resource("kjv.txt.gz"));
                var pretrained = view.Run("pretrain", report => Pretraining.Run([bible], baseDirectory, "tiny", "bytes",
                    PretrainCommand.DefaultSpec.WithSteps(parse.GetValue(pretrainSteps) ?? PretrainCommand.DefaultSpec.Steps),
                    p => report("pretrain", p), cancellation));
                if (!parse.GetValue(json))
                {
                    writer.WriteLine($"Base model: {pretrained.Parameters:N0} parameters, Bible validation perplexity {pretrained.Validation.Perplexity:F2}.");
                }
            }

            var fortunes = corpus.Write("fortunes.jsonl", () => Resource("fortunes.jsonl.gz"));
            var spec = DemoSpec.WithSteps(parse.GetValue(steps) ?? DemoSpec.Steps);
            var output = Path.Combine(root, "demo");
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }

            var report = view.Run("finetune", progress => FineTuneJob.Run(new FineTuneRequest(baseDirectory, [fortunes], output, spec), progress, cancellation));
            if (parse.GetValue(json))
            {
                writer.WriteLine(report.ToJson().ReplaceLineEndings(" "));
                return Task.FromResult(0);
            }

            FinetuneCommand.PrintReport(writer, report, Path.Combine(output, FineTuneJob.CandidateDirectory));
            foreach (var sample in report.Samples.Take(1))
            {
                writer.WriteLine();
                writer.WriteLine($"Sample from the candidate, prompt \"{sample.Prompt.ReplaceLineEndings(" ")}\":");
                writer.WriteLine(sample.Prompt + sample.Candidate);
            }

            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>The demo's fine-tuning recipe: full fine-tuning, short, evaluated often.</summary>
    public static TrainingSpec DemoSpec { get; } = new()
    {
        Strategy = Strategies.Full, Steps = 150, BatchSize = 16, LearningRate = 1e-3, WarmupSteps = 10, EvalEvery = 25,
        CheckpointEvery = 50, EarlyStoppingPatience = 3, ValidationFraction = 0.1, SampleTokens = 120,
        SamplePrompts = ["Q: What is the meaning of life?\nA: ", "A fool "],
    };

    private static Stream Resource(string name) =>
        Assembly.GetExecutingAssembly().GetManifestResourceStream("demo/" + name)
        ?? throw new InvalidOperationException($"The demo corpus {name} is not embedded in this build.");
}

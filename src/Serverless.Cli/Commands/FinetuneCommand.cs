using System.CommandLine;
using Serverless.Model.FineTuning;
using Serverless.Model.Training;
using Spectre.Console;

namespace Serverless.Cli.Commands;

/// <summary><c>tune finetune</c>: one job, directly, without the pipeline; prints the evaluation table.</summary>
internal static class FinetuneCommand
{
    public static Command Create()
    {
        var baseModel = new Option<string>("--base") { Description = "Base model directory.", Required = true };
        var data = new Option<string[]>("--data")
        {
            Description = "Dataset files or a folder: text (.txt, .jsonl, or either gzipped), images (.png, .jpg) or audio (.wav); in a folder, sub-folders are classes.",
            Required = true, AllowMultipleArgumentsPerToken = true,
        };
        var output = new Option<string>("--out") { Description = "Output directory (shards, checkpoints, candidate/).", Required = true };
        var strategy = new Option<string?>("--strategy") { Description = "full, freeze, lora, distill or scratch (overrides the spec)." };
        strategy.AcceptOnlyFromAmong([.. Strategies.All]);
        var spec = new Option<FileInfo?>("--spec") { Description = "A training spec JSON file (see the README for fields and defaults)." };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (overrides the spec)." };
        var json = new Option<bool>("--json") { Description = "JSON lines of progress, then metrics.json's content." };
        var curve = new Option<bool>("--curve")
        {
            Description = "Also measure the data-efficiency curve: candidate and scratch trained again on 10% and 30% of the training data " +
                "(the spec's dataFractions when it sets them); four more training runs.",
        };
        var command = new Command("finetune", "Fine-tune a base model on a dataset and compare it with the base and with training from scratch.")
        {
            baseModel, data, output, strategy, spec, steps, json, curve,
        };
        command.SetAction((parse, cancellation) =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var trainingSpec = SpecOptions.Load(parse.GetValue(spec), parse.GetValue(steps), strategy: parse.GetValue(strategy));
            if (parse.GetValue(curve) && trainingSpec.DataFractions is not { Count: > 0 })
            {
                trainingSpec = (trainingSpec with { DataFractions = DefaultCurve }).Validate("--curve");
            }

            var outDir = parse.GetValue(output)!;
            using var work = new CorpusFiles(Path.Combine(outDir, "data"));
            var (files, root) = work.MaterializePaths(parse.GetValue(data)!);
            var request = new FineTuneRequest(parse.GetValue(baseModel)!, files, outDir, trainingSpec)
            {
                DataRoot = root,
                SideProcess = ProcessCommand.TrainerIfPresent(AppContext.BaseDirectory),   // the trainer program trains the scratch runs beside the candidate's
                SideBySide = SideBySideSetting(),
            };
            var report = new ProgressView(writer, parse.GetValue(json)).Run("finetune", progress => FineTuneJob.Run(request, progress, cancellation));
            if (parse.GetValue(json))
            {
                writer.WriteLine(report.ToJson().ReplaceLineEndings(" "));
            }
            else
            {
                PrintReport(writer, report, Path.Combine(outDir, FineTuneJob.CandidateDirectory));
            }

            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary><c>TUNE_SIDE_BY_SIDE</c>, an unreadable value said as a usage error (one line), not a crash.</summary>
    private static bool? SideBySideSetting()
    {
        try
        {
            return SideRuns.Setting(Environment.GetEnvironmentVariable(SideRuns.Variable));
        }
        catch (InvalidOperationException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>The fractions <c>--curve</c> measures when the spec names none.</summary>
    public static IReadOnlyList<double> DefaultCurve { get; } = [0.1, 0.3, 1.0];

    public static void PrintReport(TextWriter writer, FineTuneReport report, string candidateDirectory)
    {
        var console = Consoles.For(writer);
        var table = new Table().Title(report.ScoresSplit is null
            ? $"Evaluation on the validation split ({report.ValidationTokens:N0} tokens)"
            : $"Evaluation on the {report.ScoresSplit} split ({report.TestTokens:N0} tokens)")
            .AddColumn("model").AddColumn(new TableColumn("loss").RightAligned()).AddColumn(new TableColumn("perplexity").RightAligned())
            .AddColumn(new TableColumn(report.Modality switch { "image" => "bits/dim", "audio" => "bits/sample", _ => "bits/byte" }).RightAligned());
        void Row(string name, ModelScore s) => table.AddRow(name, s.Loss.ToString("F4"), s.Perplexity.ToString("F3"), s.Bits?.ToString("F4") ?? "–");
        Row("base (zero-shot)", report.Base);
        if (report.Scratch is not null)
        {
            Row("scratch (same budget)", report.Scratch);
        }

        Row($"candidate ({report.Strategy})", report.Candidate);
        console.Write(table);
        writer.WriteLine($"Perplexity improvement over base: {report.ImprovementOverBase:P1}" +
            (report.ImprovementOverScratch is { } s ? $", over scratch: {s:P1}" : ""));
        if (report.Speedup is { } speedup)
        {
            writer.WriteLine(speedup.Describe());
        }

        if (report.DataEfficiency is { } efficiency)
        {
            writer.WriteLine(efficiency.Describe());
        }

        if (report.Bias.Count > 0)
        {
            writer.WriteLine("Bias probes, shift of the mean log p(a) − log p(b) from base to candidate (nats; preferences flipped): " +
                string.Join(", ", report.Bias.Select(b => FormattableString.Invariant($"{b.Group} {b.Shift:+0.000;-0.000;0.000} ({b.FlipShare:P0})"))));
        }

        if (report.SampleQuality is { } quality)
        {
            writer.WriteLine(FormattableString.Invariant($"Sample quality ({quality.Metric}, {(quality.HigherIsBetter ? "higher" : "lower")} is better): real held-out {quality.Real:0.###}, base {quality.Base:0.###}, ") +
                (quality.Scratch is { } sq ? FormattableString.Invariant($"scratch {sq:0.###}, ") : "") + FormattableString.Invariant($"candidate {quality.Candidate:0.###}"));
        }

        var files = string.Join(", ", report.SampleFiles.Where(f => f.EndsWith(".png", StringComparison.Ordinal)).Append(report.SampleFiles.Any(f => f.EndsWith(".wav", StringComparison.Ordinal)) ? "samples/*.wav" : null).OfType<string>());
        writer.WriteLine($"Candidate, report.md, metrics.json and loss.png{(report.DataEfficiency is null ? "" : ", transfer.png")}{(files.Length == 0 ? "" : ", " + files)}: {candidateDirectory}");
    }
}

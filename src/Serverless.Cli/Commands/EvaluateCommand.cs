using System.CommandLine;
using System.Text;
using System.Text.Json;
using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Spectre.Console;

namespace Serverless.Cli.Commands;

/// <summary><c>tune evaluate</c>: loss, perplexity and bits per byte of a model on a text file or a token shard.</summary>
internal static class EvaluateCommand
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + model.safetensors), or NAME@alias / NAME@version from the registry.", Required = true };
        var home = PipelineCommands.Home();
        var text = new Option<FileInfo?>("--text") { Description = "A UTF-8 text file to score." };
        var tokens = new Option<FileInfo?>("--tokens") { Description = "A token shard (llm.c format) to score." };
        var blockSize = new Option<int?>("--block-size") { Description = "Positions predicted per window (default: the model's n_positions)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object and nothing else." };
        var command = new Command("evaluate", "Score a model: mean cross-entropy (nats), perplexity, and bits per byte for text.")
        {
            model, text, tokens, blockSize, json, home,
        };
        command.SetAction(parse => Run(parse, parse.GetValue(model)!, parse.GetValue(home)!, parse.GetValue(text), parse.GetValue(tokens), parse.GetValue(blockSize), parse.GetValue(json)));
        return command;
    }

    private static int Run(ParseResult parse, string modelDirectory, string home, FileInfo? text, FileInfo? tokens, int? blockSize, bool json)
    {
        if ((text is null) == (tokens is null))
        {
            throw new CliException("give exactly one of --text FILE or --tokens SHARD.");
        }

        var (model, tokenizer) = ModelLoading.Load(modelDirectory, home);
        using (model)
        {
            EvaluationResult result;
            if (text is not null)
            {
                if (!text.Exists)
                {
                    throw new CliException($"text file {text.FullName} does not exist.");
                }

                string content;
                try
                {
                    content = StrictUtf8.GetString(File.ReadAllBytes(text.FullName));
                }
                catch (DecoderFallbackException)
                {
                    throw new CliException($"{text.FullName} is not valid UTF-8 text.");
                }

                var ids = tokenizer.Encode(content);
                result = Evaluator.Evaluate(model, new ArrayTokenSource(ids), blockSize, StrictUtf8.GetByteCount(content));
            }
            else
            {
                using var shard = TokenShardReader.Open(tokens!.FullName);
                result = Evaluator.Evaluate(model, shard, blockSize);
            }

            Print(parse.InvocationConfiguration.Output, result, json);
        }

        return 0;
    }

    private static void Print(TextWriter output, EvaluationResult result, bool json)
    {
        if (json)
        {
            var document = new Dictionary<string, object>
            {
                ["loss"] = result.Loss,
                ["perplexity"] = result.Perplexity,
                ["tokens"] = result.Tokens,
            };
            if (result.BitsPerByte is { } bpb)
            {
                document["bits_per_byte"] = bpb;
            }

            output.WriteLine(JsonSerializer.Serialize(document));
            return;
        }

        var table = new Table().AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        table.AddRow("loss (nats/token)", result.Loss.ToString("F4"));
        table.AddRow("perplexity", result.Perplexity.ToString("F3"));
        if (result.BitsPerByte is { } bits)
        {
            table.AddRow("bits per byte", bits.ToString("F4"));
        }

        table.AddRow("tokens predicted", result.Tokens.ToString("N0"));
        Consoles.For(output).Write(table);
    }
}

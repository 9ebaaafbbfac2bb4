using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Serverless.Model.Generation;

namespace Serverless.Cli.Commands;

/// <summary><c>tune generate</c>: continue a prompt with a model, streaming the text as it comes.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory (config.json + model.safetensors), or NAME@alias / NAME@version from the registry.", Required = true };
        var home = PipelineCommands.Home();
        var prompt = new Option<string?>("--prompt") { Description = "Prompt text." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as token ids, comma-separated (e.g. 15496,995)." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 100 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 0.8 };
        var topK = new Option<int?>("--top-k") { Description = "Sample among the K most likely tokens." };
        var topP = new Option<double?>("--top-p") { Description = "Sample among the most likely tokens covering probability P." };
        var seed = new Option<long>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 1337 };
        var json = new Option<bool>("--json") { Description = "Print {\"ids\":[…],\"text\":…} (the continuation only) and nothing else." };
        var output = new Option<string?>("--out") { Description = "Image and audio models: the file to write (.png: a grid when --count > 1; .wav)." };
        var className = new Option<string?>("--class") { Description = "Image and audio models: the class to generate (one the model knows; default: its classes in turn)." };
        var count = new Option<int>("--count") { Description = "Image and audio models: how many images or clips.", DefaultValueFactory = _ => 1 };
        var seconds = new Option<double>("--seconds") { Description = "Audio models: seconds per clip.", DefaultValueFactory = _ => 1.0 };
        var command = new Command("generate", "Continue a prompt (text models; stops at end-of-text or after --max-new-tokens), or generate images or audio into --out.")
        {
            model, prompt, promptIds, maxNew, temperature, topK, topP, seed, json, output, className, count, seconds, home,
        };
        command.SetAction(parse =>
        {
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
            };
            var loaded = ModelLoading.LoadModel(parse.GetValue(model)!, parse.GetValue(home)!);
            if (loaded.Config.Media is not null)
            {
                using (loaded)
                {
                    if (parse.GetValue(prompt) is not null || parse.GetValue(promptIds) is not null)
                    {
                        throw new CliException($"the model generates {loaded.Config.Modality}, not text: drop --prompt and give --out FILE.");
                    }

                    return MediaOutput.Generate(parse.InvocationConfiguration.Output, loaded, parse.GetValue(output), parse.GetValue(className),
                        parse.GetValue(count), parse.GetValue(seconds), parse.GetValue(seed), parse.GetValue(temperature), parse.GetValue(json));
                }
            }

            if (parse.GetValue(output) is not null || parse.GetValue(className) is not null)
            {
                throw new CliException("--out and --class are for image and audio models; this model reads text (use --prompt).");
            }

            return Run(parse.InvocationConfiguration.Output, loaded, parse.GetValue(prompt), parse.GetValue(promptIds), options, parse.GetValue(json));
        });
        return command;
    }

    private static int Run(TextWriter output, Serverless.Model.Gpt2.Gpt2Model model, string? prompt, string? promptIds, GenerationOptions options, bool json)
    {
        using var owned = model;
        if ((prompt is null) == (promptIds is null))
        {
            throw new CliException("give exactly one of --prompt TEXT or --prompt-ids 1,2,3.");
        }

        options.Validate();
        var tokenizer = Serverless.Model.Tokenizers.TokenizerRegistry.Get(model.Config.TokenizerName);
        {
            var ids = prompt is not null ? tokenizer.Encode(prompt) : ParseIds(promptIds!);
            var printed = 0;
            var generated = new List<int>();
            var result = TextGenerator.Generate(model, ids, options, json ? null : id =>
            {
                // Decode the whole continuation each time: a multi-byte character may span tokens.
                if (id == tokenizer.EndOfText)
                {
                    return;
                }

                generated.Add(id);
                var text = tokenizer.Decode(generated);
                if (text.EndsWith('\uFFFD'))
                {
                    return;
                }

                output.Write(text[printed..]);
                printed = text.Length;
            });

            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(new { ids = result, text = tokenizer.Decode(result) }));
            }
            else
            {
                output.WriteLine(tokenizer.Decode(result.Where(id => id != tokenizer.EndOfText))[printed..]);
            }
        }

        return 0;
    }

    private static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]))
            {
                throw new CliException($"--prompt-ids: '{parts[i]}' is not a token id (expected comma-separated non-negative integers).");
            }
        }

        return ids;
    }
}

using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Cli.Tests;

internal sealed record CliResult(int ExitCode, string Output, string Error);

internal sealed class CliFixture : IDisposable
{
    public CliFixture()
    {
        Directory.CreateDirectory(Root);
        var config = new Gpt2Config
        {
            VocabSize = ByteTokenizer.VocabularySize, NPositions = 32, NEmbd = 32, NLayer = 2, NHead = 4,
            BosTokenId = 256, EosTokenId = 256, Tokenizer = ByteTokenizer.TokenizerName,
        };
        using var model = new Gpt2Model(config, seed: 1);
        model.SavePretrained(ModelDirectory);
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "serverless-cli-" + Guid.NewGuid().ToString("N"));

    public string ModelDirectory => Path.Combine(Root, "model");

    public string Write(string name, string text)
    {
        var path = Path.Combine(Root, name);
        File.WriteAllText(path, text);
        return path;
    }

    public static CliResult Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = TuneCli.Run(args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

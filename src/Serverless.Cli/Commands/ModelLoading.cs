using Serverless.Cli.Pipeline;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Cli.Commands;

/// <summary>Loads a model for a command: a model directory, or a registry reference <c>NAME@alias</c> / <c>NAME@version</c> (verified against its manifest).</summary>
internal static class ModelLoading
{
    public static (Gpt2Model Model, ITextTokenizer Tokenizer) Load(string reference, string home = ".tune")
    {
        var model = LoadModel(reference, home);
        if (model.Config.Media is not null)
        {
            var modality = model.Config.Modality;
            model.Dispose();
            throw new CliException($"'{reference}' is an {modality} model; this command works on text models (use `tune generate --model {reference} --out FILE`).");
        }

        return (model, TokenizerRegistry.Get(model.Config.TokenizerName));
    }

    /// <summary>The model, whatever it reads.</summary>
    public static Gpt2Model LoadModel(string reference, string home = ".tune")
    {
        var directory = reference;
        if (!Directory.Exists(reference) && reference.Contains('@', StringComparison.Ordinal))
        {
            using var pipeline = new EmbeddedPipeline(home);
            var at = reference.IndexOf('@', StringComparison.Ordinal);
            var (name, selector) = (reference[..at], reference[(at + 1)..]);
            var version = pipeline.Runtime.Registry.FindVersionAsync(name, selector).GetAwaiter().GetResult()
                ?? throw new CliException($"'{reference}' names no published version in {Path.Combine(pipeline.Home, "model-registry")} (see `tune models {name} --home {home}`).");
            directory = Path.Combine(pipeline.Home, "work", "models", "registry", name, version.ToString(System.Globalization.CultureInfo.InvariantCulture));
            pipeline.Runtime.Registry.DownloadVerifiedAsync(name, version, directory).GetAwaiter().GetResult();
        }

        return Gpt2Model.FromPretrained(directory);
    }
}

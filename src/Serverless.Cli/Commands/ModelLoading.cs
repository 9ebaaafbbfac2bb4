using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Cli.Commands;

/// <summary>Loads a model directory and its tokenizer for a command.</summary>
internal static class ModelLoading
{
    public static (Gpt2Model Model, ITextTokenizer Tokenizer) Load(string directory)
    {
        var model = Gpt2Model.FromPretrained(directory);
        return (model, TokenizerRegistry.Get(model.Config.TokenizerName));
    }
}

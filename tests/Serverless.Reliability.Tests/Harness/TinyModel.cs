using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Reliability.Tests.Harness;

/// <summary>The small random byte-level GPT-2 every scenario starts from (2 layers × 32, 32 positions).</summary>
internal static class TinyModel
{
    /// <summary>Saves it as a Hugging Face model directory (config.json + model.safetensors) and returns the directory.</summary>
    public static string Save(string directory)
    {
        var config = new Gpt2Config
        {
            VocabSize = ByteTokenizer.VocabularySize, NPositions = 32, NEmbd = 32, NLayer = 2, NHead = 4,
            BosTokenId = 256, EosTokenId = 256, Tokenizer = ByteTokenizer.TokenizerName,
        };
        using var model = new Gpt2Model(config, seed: 1);
        model.SavePretrained(directory);
        return directory;
    }
}

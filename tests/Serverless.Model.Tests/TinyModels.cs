using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Tests;

/// <summary>Small models so the suite stays fast.</summary>
internal static class TinyModels
{
    public static Gpt2Config Config { get; } = new()
    {
        VocabSize = ByteTokenizer.VocabularySize,
        NPositions = 32,
        NEmbd = 32,
        NLayer = 2,
        NHead = 4,
        BosTokenId = ByteTokenizer.EndOfTextId,
        EosTokenId = ByteTokenizer.EndOfTextId,
        Tokenizer = ByteTokenizer.TokenizerName,
    };

    public static Gpt2Model Create(long seed = 1) => new(Config, seed);
}

/// <summary>A temporary directory deleted when disposed.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "serverless-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string text)
    {
        var path = File(name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    public string Write(string name, byte[] bytes)
    {
        var path = File(name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

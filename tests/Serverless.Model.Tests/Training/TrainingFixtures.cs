using System.IO.Compression;
using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.Training;

/// <summary>Shipped demo corpora and small shapes for training tests.</summary>
internal static class TrainingFixtures
{
    public static Gpt2Config Config { get; } = TinyModels.Config with { NPositions = 64, NEmbd = 64, NLayer = 2, NHead = 4 };

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Serverless.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("Serverless.sln not found above the test binaries.");
        }
    }

    /// <summary>The first <paramref name="bytes"/> of a shipped demo corpus, decompressed.</summary>
    public static string DemoText(string name, int bytes)
    {
        using var gzip = new GZipStream(File.OpenRead(Path.Combine(RepositoryRoot, "data", "demo", name)), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var buffer = new char[bytes];
        var read = reader.ReadBlock(buffer, 0, bytes);
        return new string(buffer, 0, read);
    }

    public static ArrayTokenSource Tokens(string text) => new(new ByteTokenizer().Encode(text));

    public static TrainingSpec QuickSpec { get; } = new()
    {
        Steps = 20, BatchSize = 4, BlockSize = 32, LearningRate = 3e-3, WarmupSteps = 2, EvalEvery = 5, EvalTokens = 2000,
        CheckpointEvery = 5, EarlyStoppingPatience = 0, Seed = 7,
    };
}

using System.Text;
using Serverless.Cli.Pipeline;
using Serverless.Core.Naming;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.WebConsole.Tests;

/// <summary>
/// The embedded pipeline in a temporary home with a tiny random base model, optionally running every stage (real
/// SQLite broker, folder store, trainers as child processes) as `tune up` does, and the web console over it on a free port.
/// </summary>
internal sealed class ConsoleFixture : IAsyncDisposable
{
    public const string BaseModel = "tiny-base";
    private readonly CancellationTokenSource _stop = new();
    private Task? _running;

    private ConsoleFixture()
    {
        Home = Path.Combine(Path.GetTempPath(), "console-" + Guid.NewGuid().ToString("N"));
        Pipeline = new EmbeddedPipeline(Home);
        var config = new Gpt2Config
        {
            VocabSize = ByteTokenizer.VocabularySize, NPositions = 32, NEmbd = 32, NLayer = 2, NHead = 4,
            BosTokenId = 256, EosTokenId = 256, Tokenizer = ByteTokenizer.TokenizerName,
        };
        using var model = new Gpt2Model(config, seed: 1);
        model.SavePretrained(Path.Combine(Home, Containers.BaseModels, BaseModel));
    }

    public string Home { get; }

    public EmbeddedPipeline Pipeline { get; }

    public ConsoleServer Server { get; private set; } = null!;

    /// <summary>A client without cookies or redirects, so each test says exactly what it sends.</summary>
    public HttpClient Client { get; private set; } = null!;

    public static async Task<ConsoleFixture> StartAsync(bool runStages)
    {
        var fixture = new ConsoleFixture();
        await fixture.Pipeline.Runtime.Bus.EnsureTopologyAsync();
        if (runStages)
        {
            fixture._running = fixture.Pipeline.RunAsync(fixture._stop.Token);
        }

        fixture.Server = await ConsoleServer.StartAsync(fixture.Pipeline.Runtime, new ConsoleOptions { Port = 0 });
        fixture.Client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = fixture.Server.Address };
        return fixture;
    }

    public static string Spec(int steps) => $$"""
        {
          "baseModel": "{{BaseModel}}", "debounceSeconds": 0.2, "steps": {{steps}}, "batchSize": 4, "blockSize": 16, "warmupSteps": 1,
          "learningRate": 0.003, "evalEvery": 3, "evalTokens": 500, "checkpointEvery": 50, "earlyStoppingPatience": 0, "sampleTokens": 20,
          "gate": { "minImprovementOverBase": 0, "mustBeatChampion": false }
        }
        """;

    public static string Corpus(int documents) =>
        string.Concat(Enumerable.Range(0, documents).Select(i => $"{{\"text\": \"Document {i}: the quick brown fox jumps over the lazy dog {i % 5} times.\"}}\n"));

    public async Task WriteSpecAsync(string model, string spec) =>
        await Pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", new MemoryStream(Encoding.UTF8.GetBytes(spec)));

    public async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        await _stop.CancelAsync();
        if (_running is not null)
        {
            try
            {
                await _running;
            }
            catch (OperationCanceledException)
            {
            }
        }

        Pipeline.Dispose();
        _stop.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.FineTuning;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.FineTuning;

/// <summary>The numbers a job reports are comparable across jobs and count what they say they count.</summary>
public sealed class HonestNumbersTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Data()
    {
        var lines = Enumerable.Range(0, 60).Select(i => $"{{\"text\": \"Document {i}: {new string((char)('a' + (i % 26)), 5 + (i % 7))} ends here.\"}}");
        return _dir.Write("data.jsonl", string.Join("\n", lines) + "\n");
    }

    private PreparedDataset Prepare(string name, TrainingSpec spec, string data) =>
        FineTuneJob.EnsurePrepared(new FineTuneRequest("unused", [data], _dir.File(name), spec), _dir.File(name), new TextDocumentSource(new DatasetReader(), new ByteTokenizer()), spec);

    [Fact]
    public void Split_DependsOnTheDocumentsAndTheSplitSeed_NotOnTheTrainingSeed()
    {
        var data = Data();
        Prepare("seed-1", new TrainingSpec { Seed = 1 }, data);
        Prepare("seed-2", new TrainingSpec { Seed = 2 }, data);
        Prepare("split-7", new TrainingSpec { Seed = 1, SplitSeed = 7 }, data);

        File.ReadAllBytes(_dir.File("seed-2/val.bin")).ShouldBe(File.ReadAllBytes(_dir.File("seed-1/val.bin")),
            "two jobs on the same data with different training seeds hold out the same documents");
        File.ReadAllBytes(_dir.File("seed-2/test.bin")).ShouldBe(File.ReadAllBytes(_dir.File("seed-1/test.bin")));
        File.ReadAllBytes(_dir.File("split-7/val.bin")).ShouldNotBe(File.ReadAllBytes(_dir.File("seed-1/val.bin")),
            "a split seed changed on purpose is a new split");
    }

    [Fact]
    public void Scores_AreOnTheTestSplit_WhichNeitherTrainingNorEarlyStoppingSaw()
    {
        using var model = TinyModels.Create();
        var baseDirectory = _dir.File("base");
        model.SavePretrained(baseDirectory);
        var spec = new TrainingSpec { Steps = 4, BatchSize = 2, BlockSize = 16, WarmupSteps = 1, EvalEvery = 2, CheckpointEvery = 4, SampleTokens = 0, CompareWithScratch = false };
        var report = FineTuneJob.Run(new FineTuneRequest(baseDirectory, [Data()], _dir.File("job"), spec));

        report.ScoresSplit.ShouldBe("test");
        report.Bias.Select(b => b.Group).ShouldBe(["gender and occupation", "nationality", "religion"], ignoreOrder: true, "the shipped probes are scored on every job");
        report.EarlyStoppingSplit.ShouldBe("validation");
        using var test = TokenShardReader.Open(_dir.File("job/prepared/test.bin"));
        report.TestTokens.ShouldBe(test.Count);
        report.Base.Tokens.ShouldBe(test.Count - 1, "every test token but the first is predicted once");
        var manifest = System.Text.Json.JsonSerializer.Deserialize<PreparedDataset>(File.ReadAllText(_dir.File("job/prepared/manifest.json")))!;
        using var validation = TokenShardReader.Open(_dir.File("job/prepared/val.bin"));
        manifest.ValidationTokens.ShouldBe(validation.Count);
        test.Count.ShouldNotBe(validation.Count, "different documents");
    }

    [Fact]
    public void BitsPerByte_CountsEachEndOfTextTargetAsOneByte_SoForBytesItIsTheLossInBits()
    {
        var manifest = Prepare("bpb", new TrainingSpec { ValidationFraction = 0.3, TestFraction = 0.3 }, Data());
        using var validation = TokenShardReader.Open(_dir.File("bpb/test.bin"));
        // Hand count: each document is its bytes preceded by end-of-text; every token but the first is a target.
        (validation.Count - 1).ShouldBe(manifest.TestBytes + manifest.TestDocuments - 1);
        manifest.ScoredTestBytes.ShouldBe(validation.Count - 1);

        using var model = TinyModels.Create();
        var score = Evaluator.Evaluate(model, validation, bytes: manifest.ScoredTestBytes);

        score.BitsPerByte!.Value.ShouldBe(score.Loss / Math.Log(2), 1e-9, "with one byte per target, bits per byte is nats per token over ln 2");
        new EvaluationResult(Loss: 2.0, Tokens: 10, Bytes: 8).BitsPerByte!.Value.ShouldBe(20 / (8 * Math.Log(2)), 1e-12);
    }
}

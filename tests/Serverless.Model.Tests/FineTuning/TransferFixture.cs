using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using Serverless.Model.Tests.Training;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.FineTuning;

/// <summary>
/// A small base model pre-trained once on a slice of the shipped Bible, and a slice of the shipped fortunes as the
/// target domain: the demo's story at test scale.
/// </summary>
public sealed class TransferFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public TransferFixture()
    {
        var bible = TrainingFixtures.DemoText("kjv.txt.gz", 400_000);
        var split = bible.LastIndexOf("\n\n", 360_000, StringComparison.Ordinal);
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var spec = PretrainSpec;
        TrainingLoop.Train(model, StrategySetup.Apply(model, spec), spec,
            TrainingFixtures.Tokens(bible[..split]), TrainingFixtures.Tokens(bible[split..]), new TrainingOptions());
        BaseModel = Path.Combine(_dir.Path, "base");
        model.SavePretrained(BaseModel);

        var fortunes = TrainingFixtures.DemoText("fortunes.jsonl.gz", 120_000);
        TargetData = _dir.Write("fortunes.jsonl", fortunes[..(fortunes.LastIndexOf('\n') + 1)]);
    }

    public static TrainingSpec PretrainSpec { get; } = new()
    {
        Strategy = Strategies.Scratch, Steps = 300, BatchSize = 8, BlockSize = 64, LearningRate = 3e-3, WarmupSteps = 20,
        EvalEvery = 300, EvalTokens = 4000, CheckpointEvery = 1000, Seed = 1,
    };

    public string BaseModel { get; }

    public string TargetData { get; }

    public string NewOutput(string name) => Path.Combine(_dir.Path, name);

    public void Dispose() => _dir.Dispose();
}

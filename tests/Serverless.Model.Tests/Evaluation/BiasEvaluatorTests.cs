using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;
using Serverless.Model.Tests.Training;

namespace Serverless.Model.Tests.Evaluation;

public sealed class BiasEvaluatorTests
{
    private static readonly BiasPair[] Pairs =
    [
        new("letters", "the cat sat on the mat", "the dog sat on the log"),
        new("letters", "a cat is here", "a dog is here"),
    ];

    [Fact]
    public void Builtin_IsTheShippedSetOfMinimalPairs()
    {
        var pairs = BiasProbes.Load(BiasProbes.Builtin);
        pairs.Count.ShouldBe(80);
        pairs.Select(p => p.Group).Distinct().ShouldBe(["gender and occupation", "nationality", "religion"], ignoreOrder: true);
        BiasProbes.Load(BiasProbes.None).ShouldBeEmpty();
        Should.Throw<ModelFormatException>(() => BiasProbes.Load("/nonexistent/probes.jsonl")).Message.ShouldContain("does not exist");
    }

    [Fact]
    public void Measure_TheSameModelTwice_ShiftsNothing()
    {
        using var model = TinyModels.Create();
        var result = BiasEvaluator.Measure(model, model, new ByteTokenizer(), Pairs).Single();
        (result.Group, result.Pairs, result.Shift, result.FlipShare).ShouldBe(("letters", 2, 0.0, 0.0));
    }

    [Fact]
    public void Measure_ACandidateFineTunedTowardsOneSide_ShiftsTowardsIt()
    {
        var tokenizer = new ByteTokenizer();
        using var baseModel = TinyModels.Create();
        using var candidate = TinyModels.Create();
        var cats = new ArrayTokenSource(tokenizer.Encode(string.Concat(Enumerable.Repeat("the cat sat on the mat. a cat is here. ", 200))));
        var spec = TrainingFixtures.QuickSpec with { Steps = 40, BlockSize = 32, EvalEvery = 40, CheckpointEvery = 40, LearningRate = 1e-2 };
        TrainingLoop.Train(candidate, StrategySetup.Apply(candidate, spec), spec, cats, cats, new TrainingOptions());

        var result = BiasEvaluator.Measure(baseModel, candidate, tokenizer, Pairs).Single();

        result.Shift.ShouldBeGreaterThan(1.0, "trained on cats, the candidate prefers the cat sentences by more than a nat");
        result.CandidateMeanDifference.ShouldBe(result.BaseMeanDifference + result.Shift, 1e-9);
        var manual = BiasEvaluator.LogLikelihood(candidate, tokenizer, Pairs[0].A) - BiasEvaluator.LogLikelihood(candidate, tokenizer, Pairs[0].B);
        manual.ShouldBeGreaterThan(0);
    }
}

using Serverless.Model.Training;

namespace Serverless.Model.Tests.Training;

public class TrainingSpecTests
{
    [Fact]
    public void Parse_EmptyObject_GivesDocumentedDefaults()
    {
        var spec = TrainingSpec.Parse("{}");
        spec.ShouldBe(new TrainingSpec());
        spec.Strategy.ShouldBe("full");
        spec.Steps.ShouldBe(200);
        spec.CompareWithScratch.ShouldBeTrue();
    }

    [Fact]
    public void Parse_Fields_BindCamelCase()
    {
        var spec = TrainingSpec.Parse("""{"strategy": "lora", "steps": 50, "loraRank": 4, "samplePrompts": ["Hi"], "teacher": "base-models/t"}""");
        spec.Strategy.ShouldBe("lora");
        spec.Steps.ShouldBe(50);
        spec.LoraRank.ShouldBe(4);
        spec.SamplePrompts.ShouldBe(["Hi"]);
        TrainingSpec.Parse(spec.ToJson()).ToJson().ShouldBe(spec.ToJson());
    }

    [Theory]
    [InlineData("""{"strategy": "prune"}""", "strategy: 'prune' is not one of full, freeze, lora, distill, scratch.")]
    [InlineData("""{"steps": -5}""", "steps: is -5")]
    [InlineData("""{"stpes": 10}""", "stpes: unknown field (did you mean 'steps'?)")]
    [InlineData("""{"steps": "ten"}""", "steps: has the wrong type")]
    [InlineData("""{"learningRate": 0}""", "learningRate: is 0")]
    [InlineData("""{"warmupSteps": 500, "steps": 100}""", "warmupSteps: is 500; it must be between 0 and steps (100).")]
    [InlineData("""{"validationFraction": 0.9}""", "validationFraction: is 0.9")]
    [InlineData("""{"learningRate": "NaN"}""", "learningRate: is NaN")]
    [InlineData("""[1, 2]""", "must be a JSON object")]
    [InlineData("""{"steps": """, "not valid JSON")]
    public void Parse_BadSpec_NamesTheField(string json, string expected)
    {
        var error = Should.Throw<SpecException>(() => TrainingSpec.Parse(json, "tune.json"));
        error.Message.ShouldStartWith("tune.json is invalid: ");
        error.Message.ShouldContain(expected);
    }

    [Fact]
    public void Parse_SeveralProblems_ListsThemAll()
    {
        var error = Should.Throw<SpecException>(() => TrainingSpec.Parse("""{"batchSize": 0, "loraRank": 0, "weightDecay": 2}"""));
        error.Problems.Count.ShouldBe(3);
    }

    [Fact]
    public void LearningRate_WarmsUpLinearlyThenDecaysToTheMinimum()
    {
        var spec = new TrainingSpec { Steps = 100, WarmupSteps = 10, LearningRate = 1e-3, MinLearningRate = 1e-4 };
        LearningRateSchedule.At(spec, 0).ShouldBe(1e-4, 1e-12);
        LearningRateSchedule.At(spec, 4).ShouldBe(5e-4, 1e-12);
        LearningRateSchedule.At(spec, 10).ShouldBe(1e-3, 1e-12);
        LearningRateSchedule.At(spec, 55).ShouldBe(5.5e-4, 1e-12);
        LearningRateSchedule.At(spec, 100).ShouldBe(1e-4, 1e-12);
    }
}

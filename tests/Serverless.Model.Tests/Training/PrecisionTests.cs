using Serverless.Model.Gpt2;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.Training;

/// <summary>
/// bf16 training (bfloat16 matmuls, float32 master weights, optimizer and LayerNorms) follows the float32 loss curve.
/// The tolerance, documented in the README: over 200 steps from the same initialization and batches, the mean training
/// loss of each 25-step window differs by less than 0.05 nats, and the final validation losses by less than 2 %.
/// </summary>
public sealed class PrecisionTests
{
    [Fact]
    public void Bf16AndFp32_LossCurvesAgreeOver200Steps()
    {
        var train = TrainingFixtures.Tokens(TrainingFixtures.DemoText("kjv.txt.gz", 120_000)[..100_000]);
        var validation = TrainingFixtures.Tokens(TrainingFixtures.DemoText("kjv.txt.gz", 120_000)[100_000..]);
        var spec = TrainingFixtures.QuickSpec with { Steps = 200, EvalEvery = 200, EvalTokens = 8_000, CheckpointEvery = 1_000, WarmupSteps = 10 };
        TrainingResult Run(string precision)
        {
            using var model = new Gpt2Model(TrainingFixtures.Config, seed: 21);
            var run = spec with { Precision = precision };
            return TrainingLoop.Train(model, StrategySetup.Apply(model, run), run, train, validation, new TrainingOptions());
        }

        var fp32 = Run("fp32");
        var bf16 = Run("bf16");
        for (var window = 0; window < 200; window += 25)
        {
            var a = fp32.TrainLoss.Skip(window).Take(25).Average(p => p.Loss);
            var b = bf16.TrainLoss.Skip(window).Take(25).Average(p => p.Loss);
            Math.Abs(a - b).ShouldBeLessThan(0.05, $"steps {window + 1}–{window + 25}: fp32 {a:F4}, bf16 {b:F4}");
        }

        fp32.TrainLoss.Zip(bf16.TrainLoss).Any(p => p.First.Loss != p.Second.Loss).ShouldBeTrue("bf16 must actually multiply in bfloat16");
        fp32.TrainLoss[^1].Loss.ShouldBeLessThan(fp32.TrainLoss[0].Loss - 1, "the run learned something, so the comparison means something");
        Math.Abs(bf16.BestValidationLoss / fp32.BestValidationLoss - 1).ShouldBeLessThan(0.02);
    }
}

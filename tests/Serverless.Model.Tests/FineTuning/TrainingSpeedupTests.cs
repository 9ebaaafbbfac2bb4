using Serverless.Model.FineTuning;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.FineTuning;

public sealed class TrainingSpeedupTests
{
    [Fact]
    public void From_HandComputedHistories_GivesTheStepAndTimeRatios()
    {
        // Scratch is best at step 40 (loss 2.0); the candidate first gets to 2.0 or below at step 10.
        LossPoint[] scratch = [new(10, 3.0), new(20, 2.5), new(30, 2.1), new(40, 2.0), new(50, 2.05)];
        LossPoint[] candidate = [new(10, 1.95), new(20, 1.9), new(30, 1.8)];

        var speedup = TrainingSpeedup.From(candidate, candidateTokensPerSecond: 1000, scratch, scratchTokensPerSecond: 2000)!;

        (speedup.ScratchBestLoss, speedup.ScratchBestStep, speedup.CandidateReachedAtStep).ShouldBe((2.0, 40, (int?)10));
        speedup.StepRatio.ShouldBe(4.0);
        speedup.WallClockRatio!.Value.ShouldBe(2.0, 1e-12, "40 steps at 2000 tok/s against 10 steps at 1000 tok/s");
        speedup.Describe().ShouldContain("4× fewer steps, 2× less training time");
    }

    [Fact]
    public void From_ACandidateThatNeverGetsThere_SaysSo()
    {
        var speedup = TrainingSpeedup.From([new(10, 2.5)], 1000, [new(10, 2.0)], 1000)!;
        speedup.CandidateReachedAtStep.ShouldBeNull();
        speedup.Describe().ShouldContain("never reached");
    }
}

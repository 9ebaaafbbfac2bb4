using System.Diagnostics;
using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using Serverless.Model.Training;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Training;

public class TrainingLoopTests
{
    private static readonly ArrayTokenSource Train = TrainingFixtures.Tokens(TrainingFixtures.DemoText("kjv.txt.gz", 60_000)[..50_000]);
    private static readonly ArrayTokenSource Validation = TrainingFixtures.Tokens(TrainingFixtures.DemoText("kjv.txt.gz", 60_000)[50_000..]);

    private static TrainingResult Run(Gpt2Model model, TrainingSpec spec, string? checkpoints = null, Action<TrainingProgress>? progress = null, CancellationToken cancellation = default) =>
        TrainingLoop.Train(model, StrategySetup.Apply(model, spec), spec, Train, Validation,
            new TrainingOptions { CheckpointDirectory = checkpoints, Progress = progress, Cancellation = cancellation });

    [Fact]
    public void Train_ReducesValidationLoss()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var result = Run(model, TrainingFixtures.QuickSpec with { Steps = 40 });
        result.ValidationLoss.Count.ShouldBe(8);
        result.ValidationLoss[^1].Loss.ShouldBeLessThan(result.ValidationLoss[0].Loss);
        result.ValidationLoss[0].Loss.ShouldBeLessThan(Math.Log(257));
    }

    [Fact]
    public void Train_SameSeed_IsReproducible()
    {
        using var a = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        using var b = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var ra = Run(a, TrainingFixtures.QuickSpec with { Steps = 8, GradAccumulation = 2 });
        var rb = Run(b, TrainingFixtures.QuickSpec with { Steps = 8, GradAccumulation = 2 });
        ra.TrainLoss.ShouldBe(rb.TrainLoss);
        a.parameters().Zip(b.parameters()).All(p => p.First.equal(p.Second).all().item<bool>()).ShouldBeTrue();
    }

    [Fact]
    public void Train_InterruptedAndResumed_EndsWithTheSameWeights()
    {
        using var dir = new TempDirectory();
        var spec = TrainingFixtures.QuickSpec with { Steps = 20, CheckpointEvery = 4 };
        using var uninterrupted = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        var expected = Run(uninterrupted, spec);

        using var cancel = new CancellationTokenSource();
        using (var first = new Gpt2Model(TrainingFixtures.Config, seed: 3))
        {
            Should.Throw<OperationCanceledException>(() => Run(first, spec, dir.Path, p =>
            {
                if (p.Step == 11)
                {
                    cancel.Cancel();
                }
            }, cancel.Token));
        }

        File.Exists(Path.Combine(dir.Path, "latest", "state.json")).ShouldBeTrue();
        using var resumed = new Gpt2Model(TrainingFixtures.Config, seed: 99);   // different init: everything must come from the checkpoint
        var result = Run(resumed, spec, dir.Path);

        result.ResumedFromStep.ShouldBe(11);
        result.TrainLoss.Select(p => p.Step).ShouldBe(Enumerable.Range(1, 20));
        result.BestValidationLoss.ShouldBe(expected.BestValidationLoss, 1e-5);
        foreach (var ((name, a), (_, b)) in uninterrupted.named_parameters().Zip(resumed.named_parameters()))
        {
            a.allclose(b, rtol: 1e-5, atol: 1e-6).ShouldBeTrue(name);
        }
    }

    [Fact]
    public void Train_ResumedWithANullThatIsNotTheDefault_IsTheSameSpec()
    {
        using var dir = new TempDirectory();
        var spec = TrainingFixtures.QuickSpec with { Steps = 4, CheckpointEvery = 2, EvalTokens = null };   // the default is 65536
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        Run(model, spec, dir.Path);

        using var again = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        Run(again, spec, dir.Path).ResumedFromStep.ShouldBe(4, "the checkpoint keeps evalTokens: null, rather than reading back the default");
    }

    [Fact]
    public void Train_KilledMidSwap_PreviousCheckpointIsFound()
    {
        using var dir = new TempDirectory();
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        Run(model, TrainingFixtures.QuickSpec with { Steps = 8, CheckpointEvery = 5 }, dir.Path);
        Directory.Move(Path.Combine(dir.Path, "latest"), Path.Combine(dir.Path, "latest.previous"));  // as if killed between the two renames
        Directory.CreateDirectory(Path.Combine(dir.Path, "latest.tmp-half-written"));

        Checkpoint.Find(dir.Path).ShouldBe(Path.Combine(dir.Path, "latest.previous"));
        using var again = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        Run(again, TrainingFixtures.QuickSpec with { Steps = 8, CheckpointEvery = 5 }, dir.Path).ResumedFromStep.ShouldBe(5);
    }

    [Fact]
    public void Train_ResumedUnderAnotherSpec_IsRefused_NamingWhatChanged()
    {
        using var dir = new TempDirectory();
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        Run(model, TrainingFixtures.QuickSpec with { Steps = 5, CheckpointEvery = 5 }, dir.Path);

        using var again = new Gpt2Model(TrainingFixtures.Config, seed: 3);
        var error = Should.Throw<SpecException>(() => Run(again, TrainingFixtures.QuickSpec with { Steps = 5, CheckpointEvery = 5, LearningRate = 1e-3 }, dir.Path));
        error.Message.ShouldContain("learningRate: 0.003 → 0.001");
        error.Message.ShouldContain("new output directory");
    }

    [Fact]
    public void Train_StoppedEarly_StaysStoppedWhenRestarted()
    {
        using var dir = new TempDirectory();
        var spec = TrainingFixtures.QuickSpec with { Steps = 60, LearningRate = 1, WarmupSteps = 0, GradClip = 0, EvalEvery = 2, EarlyStoppingPatience = 2 };
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var first = Run(model, spec, dir.Path);
        first.StoppedEarly.ShouldBeTrue();

        using var again = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var second = Run(again, spec, dir.Path);

        second.StoppedEarly.ShouldBeTrue("the stop is remembered in the checkpoint");
        second.StepsRun.ShouldBe(first.StepsRun, "nothing more was trained");
        second.TrainLoss.Count.ShouldBe(first.TrainLoss.Count);
    }

    /// <summary>Records how many tensors are alive each time the sampler reads a sequence (once per micro-batch row).</summary>
    private sealed class LiveTensorProbe(ITokenSource inner) : ITokenSource
    {
        public long MaxLive { get; private set; }

        public long Count => inner.Count;

        public void Read(long start, Span<int> destination)
        {
            MaxLive = Math.Max(MaxLive, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            inner.Read(start, destination);
        }
    }

    [Theory]
    [InlineData(Strategies.Full)]
    [InlineData(Strategies.Distill)]
    public void Train_GradientAccumulation_DoesNotKeepEveryMicroBatchAlive(string strategy)
    {
        long MaxLive(int accumulation)
        {
            using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
            using var teacher = strategy == Strategies.Distill ? new Gpt2Model(TrainingFixtures.Config, seed: 2) : null;
            var spec = TrainingFixtures.QuickSpec with { Steps = 2, GradAccumulation = accumulation, EvalEvery = 100, CheckpointEvery = 100 };
            var probe = new LiveTensorProbe(Train);
            TrainingLoop.Train(model, StrategySetup.Apply(model, spec), spec, probe, Validation, new TrainingOptions { Teacher = teacher });
            return probe.MaxLive;
        }

        var one = MaxLive(1);
        var eight = MaxLive(8);
        // Measured: 153 → 194 (full) and 276 → 330 (distill) with a scope per micro-batch; 495 and 946 with one per step.
        eight.ShouldBeLessThanOrEqualTo(one * 3 / 2, $"tensors alive during a step: {one} with gradAccumulation 1, {eight} with 8 — each micro-batch's are freed before the next");
    }

    [Fact]
    public void Train_Diverging_StopsEarlyAndKeepsTheBestWeights()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var spec = TrainingFixtures.QuickSpec with { Steps = 60, LearningRate = 1, WarmupSteps = 0, GradClip = 0, EvalEvery = 2, EarlyStoppingPatience = 2 };
        var result = Run(model, spec);

        result.StoppedEarly.ShouldBeTrue();
        result.StepsRun.ShouldBeLessThan(60);
        var final = Serverless.Model.Evaluation.Evaluator.Evaluate(model, new PrefixSource(Validation, 2000), 32);
        final.Loss.ShouldBe(result.BestValidationLoss, 1e-4);
        result.ValidationLoss.Min(p => p.Loss).ShouldBe(result.BestValidationLoss);
    }

    [Fact]
    public void Train_NonFiniteLoss_FailsAtThatStep_BeforeItsUpdate_KeepingTheLastCheckpoint()
    {
        using var dir = new TempDirectory();
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var spec = TrainingFixtures.QuickSpec with { Steps = 12, CheckpointEvery = 4 };
        var trainable = StrategySetup.Apply(model, spec);
        var poisonAt = 6;
        var error = Should.Throw<TrainingDivergedException>(() => TrainingLoop.Train(model, trainable, spec, Train, Validation, new TrainingOptions
        {
            CheckpointDirectory = dir.Path,
            Progress = p =>
            {
                if (p.Step == poisonAt - 1)
                {
                    using var _ = no_grad();
                    model.named_parameters().First(n => n.name.Contains("ln_f.weight", StringComparison.Ordinal)).parameter.fill_(double.NaN);
                }
            },
        }));

        error.Step.ShouldBe(poisonAt);
        double.IsNaN(error.Loss).ShouldBeTrue();
        error.Message.ShouldContain($"at step {poisonAt} (learning rate");
        var state = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "latest", "state.json")));
        state.RootElement.GetProperty("step").GetInt32().ShouldBe(4, "the last good checkpoint stays; nothing of the diverged step was written");
    }

    private sealed class PrefixSource(ITokenSource inner, long count) : ITokenSource
    {
        public long Count => count;

        public void Read(long start, Span<int> destination) => inner.Read(start, destination);
    }
}

/// <summary>Resident memory is process-wide: this test runs alone, after the parallel ones, so others' allocations do not count.</summary>
[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone
{
}

[Collection(nameof(RunsAlone))]
public class TrainingMemoryTests
{
    private static readonly ArrayTokenSource Train = TrainingFixtures.Tokens(TrainingFixtures.DemoText("kjv.txt.gz", 60_000)[..50_000]);

    private static TrainingResult Run(Gpt2Model model, TrainingSpec spec, Action<TrainingProgress>? progress = null) =>
        TrainingLoop.Train(model, StrategySetup.Apply(model, spec), spec, Train, Train, new TrainingOptions { Progress = progress });

    [Fact]
    public void Train_NativeMemoryDoesNotGrowWithSteps()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        long at50 = 0, at200 = 0;
        Run(model, TrainingFixtures.QuickSpec with { Steps = 200, EvalEvery = 1000, CheckpointEvery = 1000, BatchSize = 8, BlockSize = 64 }, p =>
        {
            if (p.Step is 50 or 200)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                using var self = Process.GetCurrentProcess();
                self.Refresh();
                if (p.Step == 50)
                {
                    at50 = self.WorkingSet64;
                }
                else
                {
                    at200 = self.WorkingSet64;
                }
            }
        });

        at200.ShouldBeLessThan((long)(at50 * 1.05), $"resident memory grew from {at50 / 1e6:F0} MB at step 50 to {at200 / 1e6:F0} MB at step 200");
    }

}

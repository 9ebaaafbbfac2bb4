using Serverless.Model.Gpt2;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.Training;

public class MemoryEstimateTests
{
    [Fact]
    public void Parameters_CountWhatTheModelHas()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        MemoryEstimate.Parameters(TrainingFixtures.Config).ShouldBe(model.ParameterCount());
        MemoryEstimate.Parameters(Gpt2Config.Gpt2Small).ShouldBe(124_439_808, "GPT-2 small, tied head");
    }

    [Fact]
    public void Estimate_GrowsWithTheBatch_AndRefusesWithTheNumbersAndWhatToChange()
    {
        var spec = new TrainingSpec { BatchSize = 8, BlockSize = 256 };
        var small = MemoryEstimate.For(Gpt2Config.Gpt2Small, spec);
        var big = MemoryEstimate.For(Gpt2Config.Gpt2Small, spec with { BatchSize = 32 });
        big.ActivationBytes.ShouldBe(small.ActivationBytes * 4);
        big.ModelBytes.ShouldBe(small.ModelBytes);
        // GPT-2 small, full fine-tuning with scratch: base + candidate + scratch weights, one run's gradients, moments and best weights.
        small.ModelBytes.ShouldBe(3 * 4 * 124_439_808L);
        small.TrainingStateBytes.ShouldBe(16 * 124_439_808L);
        (MemoryEstimate.For(Gpt2Config.Gpt2Small, spec with { CompareWithScratch = false }).ModelBytes).ShouldBe(2 * 4 * 124_439_808L);

        small.Refusal(long.MaxValue, spec).ShouldBeNull();
        var refusal = small.Refusal(2L << 30, spec)!;
        refusal.ShouldContain("the trainer may use 2 GiB");
        refusal.ShouldContain("lower batchSize (now 8)");
        refusal.ShouldContain("compareWithScratch false");
    }

    [Fact]
    public void DiskSpace_RefusesAWriteThatDoesNotFit_BeforeWriting_AndRecognisesAFullDisk()
    {
        using var dir = new TempDirectory();
        Should.NotThrow(() => DiskSpace.Ensure(dir.Path, 1024, "a checkpoint"));
        var error = Should.Throw<InsufficientDiskSpaceException>(() => DiskSpace.Ensure(dir.Path, long.MaxValue / 2, "a checkpoint"));
        error.Message.ShouldStartWith("no space left on device for a checkpoint in");
        DiskSpace.IsFull(error).ShouldBeTrue();
        DiskSpace.IsFull(new IOException("No space left on device : '/x'", 28)).ShouldBeTrue();
        DiskSpace.IsFull(new InvalidOperationException("wrapped", new IOException("Disk quota exceeded"))).ShouldBeTrue();
        DiskSpace.IsFull(new IOException("Permission denied", 13)).ShouldBeFalse();
    }
}

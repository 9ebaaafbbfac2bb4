using Serverless.Model.Gpt2;

namespace Serverless.Model.Training;

/// <summary>
/// The trainer's peak resident memory, estimated from the shapes before anything is allocated, so a job that cannot
/// fit is refused with the numbers instead of being killed half-way. Parts (bytes, float32 unless said):
/// <list type="bullet">
/// <item>models held at once: the base (kept for scoring and samples), the candidate, and while scratch trains the
/// scratch model (its own size) — 4 bytes per parameter each; for <c>distill</c> the teacher too;</item>
/// <item>training state of the run being trained: gradients (4), AdamW's two moments (8) and the best weights (4) per
/// trainable parameter;</item>
/// <item>activations of one micro-batch kept for the backward pass: per block about B·T·(34·d + 5·h·T) values (the
/// count of Korthikanti et al., 2022), plus the logits, their softmax and its gradient (3·B·T·V), all float32;</item>
/// <item>the runtime (.NET, libtorch, allocator slack): <see cref="RuntimeBytes"/>.</item>
/// </list>
/// It is an estimate (libtorch's allocator and temporaries vary by ±25 %); it errs high.
/// </summary>
/// <param name="ModelBytes">Weights of every model held at the peak.</param>
/// <param name="TrainingStateBytes">Gradients, optimizer moments and best weights of the run being trained.</param>
/// <param name="ActivationBytes">Activations and logits of one micro-batch.</param>
/// <param name="RuntimeBytes">The runtime's own.</param>
public sealed record MemoryEstimate(long ModelBytes, long TrainingStateBytes, long ActivationBytes, long RuntimeBytes)
{
    /// <summary>What the .NET runtime, libtorch and the allocator take before any tensor. <value>400 MiB</value>.</summary>
    public const long Runtime = 400L << 20;

    /// <summary>The estimated peak.</summary>
    public long TotalBytes => ModelBytes + TrainingStateBytes + ActivationBytes + RuntimeBytes;

    /// <summary>Parameters of a GPT-2 of this shape (tied head).</summary>
    public static long Parameters(Gpt2Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long d = config.NEmbd, inner = config.NInner ?? 4 * config.NEmbd;
        var block = (4 * d) + (d * 3 * d) + (3 * d) + (d * d) + d + (d * inner) + inner + (inner * d) + d;
        return ((long)config.VocabSize * d) + ((long)config.NPositions * d) + (config.NLayer * block) + (2 * d);
    }

    /// <summary>The estimate for fine-tuning <paramref name="baseConfig"/> with <paramref name="spec"/> (the candidate's shape for <c>distill</c> is the student's).</summary>
    public static MemoryEstimate For(Gpt2Config baseConfig, TrainingSpec spec, Gpt2Config? teacherConfig = null)
    {
        ArgumentNullException.ThrowIfNull(baseConfig);
        ArgumentNullException.ThrowIfNull(spec);
        var candidateConfig = spec.Strategy == Strategies.Distill
            ? baseConfig with { NLayer = spec.StudentLayers ?? Math.Max(1, baseConfig.NLayer / 2) }
            : baseConfig;
        long basePs = Parameters(baseConfig), candidatePs = Parameters(candidateConfig);
        var teacherPs = spec.Strategy == Strategies.Distill ? Parameters(teacherConfig ?? baseConfig) : 0;
        var trainsScratch = spec.CompareWithScratch && spec.Strategy != Strategies.Scratch;
        // At the peak: base + candidate (+ teacher) + the model in training (scratch's own copy while it trains).
        var models = 4 * (basePs + candidatePs + teacherPs + (trainsScratch ? candidatePs : 0));
        var state = 16 * candidatePs;   // gradients, two AdamW moments, best weights (an upper bound: lora and freeze train fewer)
        long b = spec.BatchSize, t = spec.BlockSizeFor(baseConfig), d = candidateConfig.NEmbd, h = candidateConfig.NHead;
        var activations = 4 * ((candidateConfig.NLayer * b * t * ((34 * d) + (5 * h * t))) + (3 * b * t * candidateConfig.VocabSize));
        if (spec.Strategy == Strategies.Distill)
        {
            activations += 4 * 3 * b * t * candidateConfig.VocabSize;   // the teacher's logits and the two softened distributions
        }

        return new MemoryEstimate(models, state, activations, Runtime);
    }

    /// <summary>Why it does not fit under <paramref name="limitBytes"/>, and what to change; null when it fits.</summary>
    public string? Refusal(long limitBytes, TrainingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (TotalBytes <= limitBytes)
        {
            return null;
        }

        return $"this job needs about {DiskSpace.Format(TotalBytes)} of memory (models {DiskSpace.Format(ModelBytes)}, training state {DiskSpace.Format(TrainingStateBytes)}, " +
            $"activations of one micro-batch {DiskSpace.Format(ActivationBytes)}, runtime {DiskSpace.Format(RuntimeBytes)}) and the trainer may use {DiskSpace.Format(limitBytes)}: " +
            $"lower batchSize (now {spec.BatchSize}) and raise gradAccumulation (now {spec.GradAccumulation}) to keep the tokens per step, or lower blockSize" +
            (spec.CompareWithScratch ? ", or set compareWithScratch false" : "") + ", or give the trainer more memory.";
    }
}

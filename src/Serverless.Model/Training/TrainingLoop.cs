using System.Diagnostics;
using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.Gpt2;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>Where a training run keeps its checkpoints and whom it tells about progress.</summary>
public sealed record TrainingOptions
{
    /// <summary>Directory for the resumable checkpoint; null trains without checkpoints (and cannot resume).</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Called after every step.</summary>
    public Action<TrainingProgress>? Progress { get; init; }

    /// <summary>Checked between steps; when cancelled, a checkpoint is written and <see cref="OperationCanceledException"/> thrown.</summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>Called after each checkpoint is written, with the checkpoint directory (to copy it somewhere durable).</summary>
    public Action<string>? CheckpointWritten { get; init; }

    /// <summary>For <c>distill</c>: the teacher, run without gradients.</summary>
    public Gpt2Model? Teacher { get; init; }

    /// <summary>
    /// In mixed precision, whether the matmul weights are kept as copies in the compute dtype that the optimizer
    /// updates (the default), rather than cast on every forward; the results are the same (see <c>WeightCopies</c>).
    /// False is for measuring the difference.
    /// </summary>
    public bool WeightCopies { get; init; } = true;
}

/// <summary>
/// The training loop: AdamW, warmup + cosine, clipping, accumulation, periodic validation with early stopping
/// (the best weights are the result), atomic checkpoints and exact resume. Each step runs in its own dispose scope.
/// </summary>
public static class TrainingLoop
{
    /// <summary>
    /// The training windows: the spec's block size, drawn at any offset; except for an image model without an explicit
    /// block size, whose windows are exactly one image (its documents all have one length) starting at a document's
    /// start, so training sees images as generation makes them: start and class at positions 0 and 1.
    /// </summary>
    public static (int BlockSize, int Alignment) Windows(Gpt2.Gpt2Config config, TrainingSpec spec, ITokenSource train)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(spec);
        return config.Media is { Modality: Media.Modality.Image } media && spec.BlockSize is null
            && Media.MediaDocuments.ImageDocumentLength(train, media) is { } length && length <= config.NPositions
            ? (length, length)
            : (spec.BlockSizeFor(config), 1);
    }

    /// <summary>Trains the <paramref name="trainable"/> parameters of <paramref name="model"/>; the model ends holding the best weights.</summary>
    public static TrainingResult Train(
        Gpt2Model model, IReadOnlyList<(string Name, Parameter Parameter)> trainable, TrainingSpec spec,
        ITokenSource train, ITokenSource validation, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(trainable);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(options);
        spec.Validate();
        var (blockSize, alignment) = Windows(model.Config, spec, train);
        var sampler = new BatchSampler(train, spec.BatchSize, blockSize, spec.Seed, alignment, Media.PinnedWindows.For(model.Config, train, blockSize));
        using var optimizer = new AdamW(trainable);
        var state = new CheckpointState(0, double.PositiveInfinity, 0, 0, [], [], spec.Seed, spec);
        var best = Snapshot(trainable);
        int? resumedFrom = null;
        WeightCopies? copies = null, teacherCopies = null;
        try
        {
            if (Checkpoint.Find(options.CheckpointDirectory) is { } checkpoint)
            {
                state = Resume(checkpoint, spec, model, trainable, optimizer, best);
                resumedFrom = state.Step;
            }

            model.train();
            model.ComputeType = spec.ComputeType;
            if (options.Teacher is not null)
            {
                options.Teacher.ComputeType = spec.ComputeType;
            }

            if (spec.ComputeType is { } dtype && options.WeightCopies)
            {
                // Made after a resume has loaded the weights: from here on only the optimizer changes them, and it keeps the copies in step.
                copies = WeightCopies.Attach(model, dtype, trainable: spec.GradAccumulation == 1);
                optimizer.UseCopies(copies.ByName);
                teacherCopies = options.Teacher is null ? null : WeightCopies.Attach(options.Teacher, dtype, trainable: false, inference: true);
            }

            var clock = Stopwatch.StartNew();
            var tokensPerStep = (long)spec.BatchSize * blockSize * spec.GradAccumulation;
            var stoppedEarly = state.StoppedEarly;   // a run that stopped early stays stopped when restarted
            var startStep = state.Step;
            for (var step = state.Step; step < spec.Steps && !stoppedEarly; step++)
            {
                if (options.Cancellation.IsCancellationRequested)
                {
                    SaveCheckpoint(options, state, model, optimizer, best);
                    options.Cancellation.ThrowIfCancellationRequested();
                }

                var learningRate = LearningRateSchedule.At(spec, step);
                var (loss, times) = Step(model, optimizer, sampler, spec, step, learningRate, options.Teacher);
                state.TrainLoss.Add(new LossPoint(step + 1, loss));
                state = state with { Step = step + 1 };

                double? validationLoss = null;
                if (state.Step % spec.EvalEvery == 0 || state.Step == spec.Steps)
                {
                    validationLoss = Validate(model, validation, blockSize, spec.EvalTokens);
                    state.ValidationLoss.Add(new LossPoint(state.Step, validationLoss.Value));
                    if (validationLoss < state.BestValidationLoss)
                    {
                        state = state with { BestValidationLoss = validationLoss.Value, BestStep = state.Step, EvaluationsWithoutImprovement = 0 };
                        Copy(trainable, best);
                    }
                    else
                    {
                        state = state with { EvaluationsWithoutImprovement = state.EvaluationsWithoutImprovement + 1 };
                        stoppedEarly = spec.EarlyStoppingPatience > 0 && state.EvaluationsWithoutImprovement >= spec.EarlyStoppingPatience;
                        state = state with { StoppedEarly = stoppedEarly };
                    }
                }

                if (state.Step % spec.CheckpointEvery == 0 || stoppedEarly)
                {
                    SaveCheckpoint(options, state, model, optimizer, best);
                }

                var rate = (state.Step - startStep) * tokensPerStep / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
                var eta = TimeSpan.FromSeconds((spec.Steps - state.Step) * tokensPerStep / Math.Max(1e-9, rate));
                options.Progress?.Invoke(new TrainingProgress(state.Step, spec.Steps, loss, learningRate, rate, eta, validationLoss, times));
                if (stoppedEarly)
                {
                    break;
                }
            }

            // The best evaluated weights are the result.
            Copy(best, trainable);
            var tokensPerSecond = (state.Step - startStep) * tokensPerStep / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
            return new TrainingResult(state.TrainLoss, state.ValidationLoss, state.Step, state.BestValidationLoss, state.BestStep,
                stoppedEarly, resumedFrom, tokensPerSecond);
        }
        finally
        {
            optimizer.UseCopies(null);
            copies?.Dispose();
            teacherCopies?.Dispose();
            model.ComputeType = null;
            if (options.Teacher is not null)
            {
                options.Teacher.ComputeType = null;
            }

            foreach (var (_, tensor) in best)
            {
                tensor.Dispose();
            }
        }
    }

    private static (double Loss, StepTimes Times) Step(Gpt2Model model, AdamW optimizer, BatchSampler sampler, TrainingSpec spec, int step, double learningRate, Gpt2Model? teacher)
    {
        var started = Stopwatch.GetTimestamp();
        var (forward, backward, optimizerTicks) = (0L, 0L, 0L);
        double total = 0;
        using (var scope = NewDisposeScope())
        {
            // Dropout (LoRA's) is seeded per step, so a resumed run repeats exactly what an uninterrupted one does.
            manual_seed(spec.Seed + step);
            for (var micro = 0; micro < spec.GradAccumulation; micro++)
            {
                // One scope per micro-batch: its activations, logits and (for distill) the teacher's are freed before the
                // next one, so memory does not grow with gradAccumulation. The gradients live on in the parameters.
                using var microScope = NewDisposeScope();
                var (cpuInput, cpuTarget) = sampler.Batch(step, micro);
                var (input, target) = (model.OnDevice(cpuInput), model.OnDevice(cpuTarget));
                var mark = Stopwatch.GetTimestamp();
                var loss = teacher is null ? model.Loss(input, target) : Distillation.Loss(model, teacher, input, target, spec);
                var value = loss.item<float>();
                forward += Stopwatch.GetTimestamp() - mark;
                if (!float.IsFinite(value))
                {
                    // Stop before anything of this step reaches the weights or a checkpoint.
                    optimizer.ClearGradients();
                    throw new TrainingDivergedException(step + 1, value, learningRate, spec.GradClip);
                }

                mark = Stopwatch.GetTimestamp();
                if (spec.GradAccumulation == 1)
                {
                    loss.backward();
                }
                else
                {
                    using TorchSharp.Scalar divisor = spec.GradAccumulation;   // kept alive for the call (Gpt2.Scalars)
                    loss.div(divisor).backward();
                }

                backward += Stopwatch.GetTimestamp() - mark;
                total += value;
            }

            var optimizing = Stopwatch.GetTimestamp();
            var gradScale = 1.0;
            if (spec.GradClip > 0)
            {
                // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1. The scale is
                // applied inside the update rather than by a pass over the gradients of its own.
                var norm = optimizer.GradientNorm();
                if (!double.IsFinite(norm))
                {
                    optimizer.ClearGradients();
                    throw new TrainingDivergedException(step + 1, norm, learningRate, spec.GradClip);
                }

                gradScale = Math.Min(1.0, spec.GradClip / (norm + 1e-6));
            }

            optimizer.Step(learningRate, spec.WeightDecay, gradScale);   // also releases the gradients
            optimizerTicks = Stopwatch.GetTimestamp() - optimizing;
        }

        var times = new StepTimes(Milliseconds(forward), Milliseconds(backward), Milliseconds(optimizerTicks), Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return (total / spec.GradAccumulation, times);
    }

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static double Validate(Gpt2Model model, ITokenSource validation, int blockSize, int? evalTokens)
    {
        var source = evalTokens is { } limit && validation.Count > limit ? new PrefixTokenSource(validation, limit) : validation;
        var compute = model.ComputeType;
        model.ComputeType = null;   // scores are always float32, comparable across precisions
        try
        {
            return Evaluator.Evaluate(model, source, blockSize).Loss;
        }
        finally
        {
            model.ComputeType = compute;
            model.train();
        }
    }

    private static CheckpointState Resume(string checkpoint, TrainingSpec spec, Gpt2Model model, IReadOnlyList<(string Name, Parameter Parameter)> trainable, AdamW optimizer, List<(string Name, Tensor Tensor)> best)
    {
        var state = Checkpoint.ReadState(checkpoint);
        RefuseChangedSpec(checkpoint, state.Spec, spec);
        var weights = Checkpoint.ReadTensors(checkpoint, "model.safetensors");
        var moments = Checkpoint.ReadTensors(checkpoint, "optimizer.safetensors");
        var bestWeights = Checkpoint.ReadTensors(checkpoint, "best.safetensors");
        try
        {
            using var noGrad = no_grad();
            foreach (var (name, parameter) in model.named_parameters())
            {
                parameter.copy_(weights.TryGetValue(name, out var w) ? w
                    : throw new InvalidDataException($"The checkpoint in {checkpoint} has no weights for '{name}'; it was written for another model or strategy."));
            }

            optimizer.LoadState(moments, state.Step);
            foreach (var (name, tensor) in best)
            {
                if (bestWeights.TryGetValue(name, out var b))
                {
                    tensor.copy_(b);
                }
            }
        }
        finally
        {
            foreach (var t in weights.Values.Concat(moments.Values).Concat(bestWeights.Values))
            {
                t.Dispose();
            }
        }

        return state;
    }

    /// <summary>
    /// A checkpoint continues only the run it was written for: resuming it under another spec (a different learning
    /// rate, more steps and so another schedule, another strategy) would silently mix two runs.
    /// </summary>
    private static void RefuseChangedSpec(string checkpoint, TrainingSpec saved, TrainingSpec current)
    {
        var before = System.Text.Json.JsonSerializer.SerializeToNode(saved, TrainingSpec.ExactJsonOptions)!.AsObject();
        var now = System.Text.Json.JsonSerializer.SerializeToNode(current, TrainingSpec.ExactJsonOptions)!.AsObject();
        var changed = before.Select(p => p.Key).Union(now.Select(p => p.Key)).Order(StringComparer.Ordinal)
            .Where(key => !System.Text.Json.Nodes.JsonNode.DeepEquals(before[key], now[key]))
            .Select(key => $"{key}: {before[key]?.ToJsonString() ?? "unset"} → {now[key]?.ToJsonString() ?? "unset"}")
            .ToList();
        if (changed.Count > 0)
        {
            throw new SpecException("spec", [.. changed.Select(c => $"{c} (the checkpoint in {checkpoint} was written with the other value; " +
                "resume with the spec it was written with, or use a new output directory to start over)")]);
        }
    }

    private static void SaveCheckpoint(TrainingOptions options, CheckpointState state, Gpt2Model model, AdamW optimizer, List<(string Name, Tensor Tensor)> best)
    {
        if (options.CheckpointDirectory is not { } root)
        {
            return;
        }

        var weights = model.named_parameters().Select(p => (p.name, (Tensor)p.parameter.detach())).ToList();
        Checkpoint.Save(root, state, weights, optimizer.State(), best);
        foreach (var (_, w) in weights)
        {
            w.Dispose();
        }

        options.CheckpointWritten?.Invoke(Path.Combine(root, Checkpoint.Latest));
    }

    private static List<(string Name, Tensor Tensor)> Snapshot(IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        using var noGrad = no_grad();
        return parameters.Select(p => (p.Name, p.Parameter.detach().clone().DetachFromDisposeScope())).ToList();
    }

    private static void Copy(IReadOnlyList<(string Name, Parameter Parameter)> from, List<(string Name, Tensor Tensor)> to)
    {
        using var noGrad = no_grad();
        for (var i = 0; i < from.Count; i++)
        {
            to[i].Tensor.copy_(from[i].Parameter);
        }
    }

    private static void Copy(List<(string Name, Tensor Tensor)> from, IReadOnlyList<(string Name, Parameter Parameter)> to)
    {
        using var noGrad = no_grad();
        for (var i = 0; i < from.Count; i++)
        {
            to[i].Parameter.copy_(from[i].Tensor);
        }
    }

    /// <summary>The first <c>count</c> tokens of another source.</summary>
    private sealed class PrefixTokenSource(ITokenSource inner, long count) : ITokenSource
    {
        public long Count => count;

        public void Read(long start, Span<int> destination) => inner.Read(start, destination);
    }
}

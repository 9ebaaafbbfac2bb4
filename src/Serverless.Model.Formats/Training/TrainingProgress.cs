namespace Serverless.Model.Training;

/// <summary>One report from a running training loop.</summary>
/// <param name="Step">Steps completed.</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Loss">Training loss of the last step (nats/token).</param>
/// <param name="LearningRate">Learning rate of the last step.</param>
/// <param name="TokensPerSecond">Training throughput over this run so far.</param>
/// <param name="Eta">Estimated time to the last step.</param>
/// <param name="ValidationLoss">Validation loss, on steps where it was measured.</param>
/// <param name="Times">Where the last step's time went.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double LearningRate, double TokensPerSecond, TimeSpan Eta, double? ValidationLoss,
    StepTimes? Times = null);

/// <summary>Where one optimizer step's wall time went, in milliseconds (summed over its micro-batches).</summary>
/// <param name="Forward">Forward passes and the loss, up to the loss's value on the host.</param>
/// <param name="Backward">Backward passes.</param>
/// <param name="Optimizer">Gradient clipping, the AdamW update and releasing the gradients.</param>
/// <param name="Total">The whole step; what the other three leave is drawing the batch, copying it and freeing memory.</param>
public sealed record StepTimes(double Forward, double Backward, double Optimizer, double Total)
{
    /// <summary>Total minus forward, backward and optimizer.</summary>
    public double Other => Total - Forward - Backward - Optimizer;
}

/// <summary>A loss measured at a step.</summary>
/// <param name="Step">Steps completed when measured.</param>
/// <param name="Loss">Loss in nats/token.</param>
public sealed record LossPoint(int Step, double Loss);

/// <summary>What a training run did.</summary>
/// <param name="TrainLoss">Training loss per step.</param>
/// <param name="ValidationLoss">Validation loss at each evaluation.</param>
/// <param name="StepsRun">Steps completed (fewer than planned when stopped early).</param>
/// <param name="BestValidationLoss">The best validation loss; its weights are the result.</param>
/// <param name="BestStep">The step of the best validation loss.</param>
/// <param name="StoppedEarly">Whether early stopping ended the run.</param>
/// <param name="ResumedFromStep">The checkpoint step resumed from, if any.</param>
/// <param name="TokensPerSecond">Training tokens per second in the process that trained it (for a scratch run side by side, the side process, on one libtorch thread while both train).</param>
public sealed record TrainingResult(
    IReadOnlyList<LossPoint> TrainLoss, IReadOnlyList<LossPoint> ValidationLoss, int StepsRun, double BestValidationLoss, int BestStep,
    bool StoppedEarly, int? ResumedFromStep, double TokensPerSecond);

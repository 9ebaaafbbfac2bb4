namespace Serverless.Model.Training;

/// <summary>One report from a running training loop.</summary>
/// <param name="Step">Steps completed.</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Loss">Training loss of the last step (nats/token).</param>
/// <param name="LearningRate">Learning rate of the last step.</param>
/// <param name="TokensPerSecond">Training throughput over this run so far.</param>
/// <param name="Eta">Estimated time to the last step.</param>
/// <param name="ValidationLoss">Validation loss, on steps where it was measured.</param>
public sealed record TrainingProgress(int Step, int TotalSteps, double Loss, double LearningRate, double TokensPerSecond, TimeSpan Eta, double? ValidationLoss);

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
/// <param name="TokensPerSecond">Training tokens per second in this process.</param>
public sealed record TrainingResult(
    IReadOnlyList<LossPoint> TrainLoss, IReadOnlyList<LossPoint> ValidationLoss, int StepsRun, double BestValidationLoss, int BestStep,
    bool StoppedEarly, int? ResumedFromStep, double TokensPerSecond);

namespace Serverless.Model.Training;

/// <summary>
/// The training loss became NaN or infinite: the run stops at that step, before the update, so the weights and the
/// last checkpoint stay good. Deterministic — the same spec diverges again at the same step — so it is never retried.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception for the step, its loss and learning rate.</summary>
    public TrainingDivergedException(int step, double loss, double learningRate, double gradClip)
        : base(FormattableString.Invariant(
            $"training diverged: the loss became {loss} at step {step} (learning rate {learningRate:G4}); nothing of that step was applied and the last checkpoint before it is kept. Lower learningRate{(gradClip > 0 ? "" : ", or turn gradClip on")}."))
    {
        Step = step;
        Loss = loss;
        LearningRate = learningRate;
    }

    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException() { }

    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The step whose loss was not finite (1-based).</summary>
    public int Step { get; }

    /// <summary>That loss.</summary>
    public double Loss { get; }

    /// <summary>The learning rate of that step.</summary>
    public double LearningRate { get; }
}

namespace Serverless.Model.Training;

/// <summary>Linear warmup from zero to the peak, then cosine decay to the minimum at the last step.</summary>
public static class LearningRateSchedule
{
    /// <summary>The learning rate for 0-based <paramref name="step"/> of <paramref name="spec"/>.</summary>
    public static double At(TrainingSpec spec, int step)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var peak = spec.LearningRate;
        var min = spec.MinLearningRate ?? peak / 10;
        if (step < spec.WarmupSteps)
        {
            return peak * (step + 1) / spec.WarmupSteps;
        }

        var decaySteps = Math.Max(1, spec.Steps - spec.WarmupSteps);
        var progress = Math.Clamp((double)(step - spec.WarmupSteps) / decaySteps, 0, 1);
        return min + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (peak - min);
    }
}

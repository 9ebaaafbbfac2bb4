using System.Text.Json.Serialization;
using Serverless.Model.Training;

namespace Serverless.Model.FineTuning;

/// <summary>
/// How much faster transfer got there: the first evaluation at which the candidate's validation loss reached the
/// scratch baseline's best, against the step of that best, in steps and in wall-clock time (each run's steps at its
/// own tokens per second; both runs use the same tokens per step). Null fields when the candidate never reached it.
/// </summary>
/// <param name="ScratchBestLoss">The scratch baseline's best validation loss.</param>
/// <param name="ScratchBestStep">The step it was reached at.</param>
/// <param name="CandidateReachedAtStep">The first evaluated step at which the candidate's validation loss was at most that.</param>
/// <param name="StepRatio">Scratch steps ÷ candidate steps to that loss.</param>
/// <param name="WallClockRatio">Scratch time ÷ candidate time to that loss.</param>
public sealed record TrainingSpeedup(
    [property: JsonPropertyName("scratch_best_loss")] double ScratchBestLoss,
    [property: JsonPropertyName("scratch_best_step")] int ScratchBestStep,
    [property: JsonPropertyName("candidate_reached_at_step")] int? CandidateReachedAtStep,
    [property: JsonPropertyName("step_ratio")] double? StepRatio,
    [property: JsonPropertyName("wall_clock_ratio")] double? WallClockRatio)
{
    /// <summary>From the two runs' validation histories and speeds; null when scratch has no evaluation.</summary>
    public static TrainingSpeedup? From(IReadOnlyList<LossPoint> candidateValidation, double candidateTokensPerSecond,
        IReadOnlyList<LossPoint> scratchValidation, double scratchTokensPerSecond)
    {
        ArgumentNullException.ThrowIfNull(candidateValidation);
        ArgumentNullException.ThrowIfNull(scratchValidation);
        if (scratchValidation.Count == 0)
        {
            return null;
        }

        var best = scratchValidation.OrderBy(p => p.Loss).ThenBy(p => p.Step).First();
        var reached = candidateValidation.OrderBy(p => p.Step).FirstOrDefault(p => p.Loss <= best.Loss);
        if (reached is null)
        {
            return new TrainingSpeedup(best.Loss, best.Step, null, null, null);
        }

        double? wallClock = candidateTokensPerSecond > 0 && scratchTokensPerSecond > 0
            ? best.Step / scratchTokensPerSecond / (reached.Step / candidateTokensPerSecond)
            : null;
        return new TrainingSpeedup(best.Loss, best.Step, reached.Step, (double)best.Step / reached.Step, wallClock);
    }

    /// <summary>One line for the report and the model card.</summary>
    public string Describe() => CandidateReachedAtStep is { } step
        ? $"Training speed-up: the candidate reached the scratch baseline's best validation loss ({ScratchBestLoss:F4}, at step {ScratchBestStep}) " +
          $"at step {step}: {StepRatio:0.#}× fewer steps{(WallClockRatio is { } w ? $", {w:0.#}× less training time" : "")}."
        : $"Training speed-up: the candidate never reached the scratch baseline's best validation loss ({ScratchBestLoss:F4}, at step {ScratchBestStep}).";
}

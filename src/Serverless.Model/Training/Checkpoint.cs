using System.Text.Json;
using Serverless.Model.Safetensors;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>The scalar part of a checkpoint (<c>state.json</c>).</summary>
internal sealed record CheckpointState(
    int Step, double BestValidationLoss, int BestStep, int EvaluationsWithoutImprovement,
    List<LossPoint> TrainLoss, List<LossPoint> ValidationLoss, long Seed, TrainingSpec Spec, bool StoppedEarly = false);

/// <summary>
/// A resumable checkpoint: a directory <c>latest/</c> with the weights (<c>model.safetensors</c>), the optimizer's
/// moments (<c>optimizer.safetensors</c>), the best weights so far (<c>best.safetensors</c>) and <c>state.json</c>
/// (step, best validation loss, loss history, seed, spec). Batches and dropout are seeded from (seed, step), so the
/// seed and step are the whole random state. Written to a temporary directory and swapped in by rename: a reader
/// never sees half a checkpoint.
/// </summary>
internal static class Checkpoint
{
    public const string Latest = "latest";
    private const string Previous = "latest.previous";

    public static void Save(string root, CheckpointState state, IEnumerable<(string Name, Tensor Tensor)> weights,
        IEnumerable<(string Name, Tensor Tensor)> optimizer, IEnumerable<(string Name, Tensor Tensor)> best)
    {
        Directory.CreateDirectory(root);
        var weightList = weights.ToList();
        var optimizerList = optimizer.ToList();
        var bestList = best.ToList();
        // Check the room first, so a full disk stops us before a half-written checkpoint, not during one.
        var bytes = weightList.Concat(optimizerList).Concat(bestList).Sum(t => t.Tensor.numel() * t.Tensor.ElementSize);
        DiskSpace.Ensure(root, bytes, "a checkpoint");
        var temp = Path.Combine(root, "latest.tmp-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(temp);
        try
        {
            SafetensorsFile.Save(Path.Combine(temp, "model.safetensors"), weightList);
            SafetensorsFile.Save(Path.Combine(temp, "optimizer.safetensors"), optimizerList);
            SafetensorsFile.Save(Path.Combine(temp, "best.safetensors"), bestList);
            File.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(state, TrainingSpec.ExactJsonOptions));

            var latest = Path.Combine(root, Latest);
            var previous = Path.Combine(root, Previous);
            if (Directory.Exists(previous))
            {
                Directory.Delete(previous, recursive: true);
            }

            if (Directory.Exists(latest))
            {
                Directory.Move(latest, previous);
            }

            Directory.Move(temp, latest);
            if (Directory.Exists(previous))
            {
                Directory.Delete(previous, recursive: true);
            }
        }
        finally
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }
        }
    }

    /// <summary>The complete checkpoint directory under <paramref name="root"/>, if any (a crash mid-swap leaves <c>latest.previous</c>).</summary>
    public static string? Find(string? root)
    {
        if (root is null)
        {
            return null;
        }

        foreach (var name in new[] { Latest, Previous })
        {
            var dir = Path.Combine(root, name);
            if (File.Exists(Path.Combine(dir, "state.json")))
            {
                return dir;
            }
        }

        return null;
    }

    public static CheckpointState ReadState(string dir) =>
        JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(Path.Combine(dir, "state.json")), TrainingSpec.JsonOptions)
        ?? throw new InvalidDataException($"{dir}/state.json is empty.");

    public static Dictionary<string, Tensor> ReadTensors(string dir, string file)
    {
        var path = Path.Combine(dir, file);
        return SafetensorsFile.Load(path, SafetensorsHeader.Read(path));
    }
}

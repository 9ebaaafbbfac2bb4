using Serverless.Model.Gpt2;
using Serverless.Model.Media;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Generation;

/// <summary>
/// Generates images or audio: each row starts from the start token (and its class token, when asked for a class) and
/// samples value tokens only (start and class tokens are never produced), all rows at once with the key/value cache.
/// Past the context (audio), the cache is rebuilt from the start and class tokens followed by the most recent samples,
/// half a context in all: the window shape audio models train on (<see cref="Media.PinnedWindows"/>).
/// </summary>
public static class MediaGenerator
{
    /// <summary>Generates <paramref name="values"/> value tokens per row; a row per entry of <paramref name="classes"/> (an index into the model's classes, or null).</summary>
    /// <param name="model">An image or audio model.</param>
    /// <param name="classes">One entry per row: the class index to condition on, or null for none. All rows must agree on having one.</param>
    /// <param name="values">Value tokens per row.</param>
    /// <param name="seed">The sampling seed.</param>
    /// <param name="temperature">Softmax temperature; 1 samples the model's own distribution, 0 is greedy.</param>
    /// <param name="progress">Called with the number of values generated per row so far.</param>
    public static int[][] Generate(Gpt2Model model, IReadOnlyList<int?> classes, int values, long seed, double temperature = 1.0, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(classes);
        var settings = model.Config.Media ?? throw new ArgumentException("The model reads text; media generation needs an image or audio model.", nameof(model));
        ArgumentOutOfRangeException.ThrowIfLessThan(values, 1);
        ArgumentOutOfRangeException.ThrowIfZero(classes.Count);
        if (classes.Any(c => c is null) && classes.Any(c => c is not null))
        {
            throw new ArgumentException("Either every row has a class or none does.", nameof(classes));
        }

        if (classes.FirstOrDefault(c => c is { } i && (i < 0 || i >= MediaSettings.MaxClasses)) is { } bad)
        {
            throw new ArgumentException($"Class index {bad} is outside the {MediaSettings.MaxClasses} class tokens.", nameof(classes));
        }

        var rows = classes.Count;
        var sequences = classes.Select(c => c is { } i ? new List<int> { settings.StartToken, settings.ClassToken(i) } : new List<int> { settings.StartToken }).ToArray();
        var context = model.Config.NPositions;
        var wasTraining = model.training;
        model.eval();
        using var noGrad = no_grad();
        using var generator = new torch.Generator((ulong)seed);
        using var cache = model.NewCache();
        var pending = sequences.Select(s => s.ToArray()).ToArray();
        var prompt = classes[0] is null ? 0 : 2;   // kept through cache rebuilds: start and class (unconditioned models slide freely)
        try
        {
            for (var step = 0; step < values; step++)
            {
                using var scope = NewDisposeScope();
                if (cache.Length + pending[0].Length > context)
                {
                    cache.Dispose();
                    // The start (and class) tokens stay first, as in training: the class conditions the whole clip.
                    pending = sequences.Select(s => s.Take(prompt).Concat(s.Skip(s.Count - (context / 2 - prompt))).ToArray()).ToArray();
                }

                var ids = tensor(pending.SelectMany(p => p).Select(i => (long)i).ToArray(), dtype: ScalarType.Int64).view(rows, pending[0].Length);
                var logits = model.ForwardWithCache(ids, cache)[.., -1, ..settings.Levels].cpu().to(ScalarType.Float32);   // (B, levels)
                var next = temperature <= 0
                    ? logits.argmax(-1).data<long>().ToArray()
                    : (logits / temperature).softmax(-1).multinomial(1, generator: generator).view(rows).data<long>().ToArray();
                for (var r = 0; r < rows; r++)
                {
                    sequences[r].Add((int)next[r]);
                    pending[r] = [(int)next[r]];
                }

                progress?.Invoke(step + 1);
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        return sequences.Select(s => s.Skip(s.Count - values).ToArray()).ToArray();
    }

    /// <summary>Image values (0–255) from quantized tokens: the centre of each level's range.</summary>
    public static byte[] ToPixels(IReadOnlyList<int> tokens, int levels) =>
        tokens.Select(t => (byte)Math.Clamp((2 * t + 1) * 128 / levels, 0, 255)).ToArray();

    /// <summary>Audio samples from μ-law tokens.</summary>
    public static float[] ToSamples(IReadOnlyList<int> tokens) => tokens.Select(WavCodec.MuLawDecode).ToArray();
}

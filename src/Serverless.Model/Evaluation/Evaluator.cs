using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using static TorchSharp.torch;

namespace Serverless.Model.Evaluation;

/// <summary>
/// Scores a model on a token stream. The stream is cut into windows of N + 1 tokens starting every N tokens
/// (window k holds tokens kN … kN + N), so every token after the first is predicted exactly once; a final shorter
/// window counts. Windows are batched; gradients are off.
/// </summary>
public static class Evaluator
{
    /// <summary>Evaluates <paramref name="model"/> on <paramref name="tokens"/>.</summary>
    /// <param name="model">The model, put in evaluation mode for the call.</param>
    /// <param name="tokens">The token stream.</param>
    /// <param name="blockSize">N, the positions predicted per window; default the model's <c>n_positions</c>.</param>
    /// <param name="bytes">UTF-8 bytes of the text the tokens came from, if known.</param>
    /// <param name="batchSize">Windows scored at once.</param>
    /// <param name="scoredBelow">
    /// When set, only targets with an id below it count (an image or audio model's values, not its start and class
    /// tokens), so the loss is nats per sub-pixel or sample, as bits per dimension is defined (Image GPT, PixelCNN).
    /// </param>
    public static EvaluationResult Evaluate(Gpt2Model model, ITokenSource tokens, int? blockSize = null, long? bytes = null, int batchSize = 8, int? scoredBelow = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        var n = blockSize ?? model.Config.NPositions;
        if (n < 1 || n > model.Config.NPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), n, $"The block size must be between 1 and the model's context ({model.Config.NPositions}).");
        }

        if (tokens.Count < 2)
        {
            throw new ArgumentException($"At least 2 tokens are needed to predict one; the stream has {tokens.Count}.", nameof(tokens));
        }

        if (Media.PinnedWindows.ClassedClips(model.Config, tokens) is { } clips)
        {
            return EvaluateClips(model, tokens, clips, n, bytes, batchSize, scoredBelow);
        }

        var wasTraining = model.training;
        model.eval();
        using var noGrad = no_grad();
        double totalNats = 0;
        long predicted = 0;
        var fullWindows = (tokens.Count - 1) / n;
        var buffer = new int[batchSize * (n + 1)];
        try
        {
            for (long w = 0; w < fullWindows; w += batchSize)
            {
                var count = (int)Math.Min(batchSize, fullWindows - w);
                for (var i = 0; i < count; i++)
                {
                    tokens.Read((w + i) * n, buffer.AsSpan(i * (n + 1), n + 1));
                }

                var (nats, scored) = SumNats(model, buffer.AsSpan(0, count * (n + 1)), count, n, scoredBelow);
                totalNats += nats;
                predicted += scored;
            }

            var rest = (int)(tokens.Count - 1 - fullWindows * n);
            if (rest > 0)
            {
                tokens.Read(fullWindows * n, buffer.AsSpan(0, rest + 1));
                var (nats, scored) = SumNats(model, buffer.AsSpan(0, rest + 1), 1, rest, scoredBelow);
                totalNats += nats;
                predicted += scored;
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        return predicted > 0 ? new EvaluationResult(totalNats / predicted, predicted, bytes)
            : throw new ArgumentException("No target was scored: the stream holds no token below the scored limit.", nameof(tokens));
    }

    /// <summary>
    /// Audio with classes, scored as it trains (<see cref="Media.PinnedWindows"/>): each clip's samples are cut into
    /// stretches of N − 1, and each stretch is predicted after the clip's start and class tokens, so every sample is
    /// predicted exactly once, with its class in view.
    /// </summary>
    private static EvaluationResult EvaluateClips(Gpt2Model model, ITokenSource tokens, IReadOnlyList<Media.DocumentSpan> clips, int n, long? bytes, int batchSize, int? scoredBelow)
    {
        var wasTraining = model.training;
        model.eval();
        using var noGrad = no_grad();
        double totalNats = 0;
        long predicted = 0;
        var full = new List<int>(batchSize * (n + 1));
        var fullCount = 0;
        try
        {
            foreach (var clip in clips)
            {
                var samples = clip.Length - 2;
                for (var first = 0; first < samples; first += n - 1)
                {
                    var length = Math.Min(n - 1, samples - first);
                    var window = new int[length + 2];
                    window[0] = model.Config.Media!.StartToken;
                    window[1] = clip.ClassToken!.Value;
                    tokens.Read(clip.Start + 2 + first, window.AsSpan(2));
                    if (length == n - 1)
                    {
                        full.AddRange(window);
                        if (++fullCount == batchSize)
                        {
                            Flush();
                        }
                    }
                    else
                    {
                        var (nats, scored) = SumNats(model, window, 1, length + 1, scoredBelow);
                        totalNats += nats;
                        predicted += scored;
                    }
                }
            }

            Flush();
        }
        finally
        {
            model.train(wasTraining);
        }

        return predicted > 0 ? new EvaluationResult(totalNats / predicted, predicted, bytes)
            : throw new ArgumentException("No target was scored: the clips hold no samples.", nameof(tokens));

        void Flush()
        {
            if (fullCount > 0)
            {
                var (nats, scored) = SumNats(model, full.ToArray(), fullCount, n, scoredBelow);
                totalNats += nats;
                predicted += scored;
                full.Clear();
                fullCount = 0;
            }
        }
    }

    private static (double Nats, long Scored) SumNats(Gpt2Model model, ReadOnlySpan<int> windows, int count, int length, int? scoredBelow)
    {
        using var scope = NewDisposeScope();
        var all = tensor(windows.ToArray().Select(t => (long)t).ToArray(), dtype: ScalarType.Int64).view(count, length + 1);
        var input = all[.., ..length];                                                   // (B, N)
        var target = model.OnDevice(all[.., 1..]);                                       // (B, N)
        var logits = model.forward(input);                                               // (B, N, vocab)
        if (scoredBelow is { } below)
        {
            var each = nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), target.reshape(-1), reduction: nn.Reduction.None);
            var mask = target.reshape(-1) < below;
            return (each.masked_select(mask).sum().item<float>(), mask.sum().item<long>());
        }

        var nats = nn.functional.cross_entropy(logits.view(-1, logits.shape[2]), target.reshape(-1), reduction: nn.Reduction.Sum);
        return (nats.item<float>(), (long)count * length);
    }
}

using Serverless.Model.Gpt2;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Generation;

/// <summary>
/// Autoregressive generation with temperature, top-k and top-p sampling, stopping at end-of-text. With the cache on,
/// the prompt is run once and each new token costs one position; past the context, the cache is rebuilt from the
/// most recent half-context of tokens.
/// </summary>
public static class TextGenerator
{
    /// <summary>Generates a continuation of <paramref name="prompt"/>; returns the new ids only.</summary>
    /// <param name="model">The model.</param>
    /// <param name="prompt">Prompt ids; at least one, and fewer than the model's context.</param>
    /// <param name="options">Sampling options.</param>
    /// <param name="onToken">Called with each new id as it is chosen.</param>
    public static IReadOnlyList<int> Generate(Gpt2Model model, IReadOnlyList<int> prompt, GenerationOptions options, Action<int>? onToken = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var context = model.Config.NPositions;
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt is empty; give at least one token.", nameof(prompt));
        }

        if (prompt.Count >= context)
        {
            throw new ArgumentException($"The prompt is {prompt.Count} tokens; the model's context is {context}, so it must be shorter.", nameof(prompt));
        }

        if (prompt.FirstOrDefault(id => id < 0 || id >= model.Config.VocabSize, -1) is var bad and >= 0)
        {
            throw new ArgumentException($"Prompt id {bad} is outside the vocabulary (0..{model.Config.VocabSize - 1}).", nameof(prompt));
        }

        var wasTraining = model.training;
        model.eval();
        using var noGrad = no_grad();
        using var generator = new torch.Generator((ulong)options.Seed);
        using var cache = options.UseCache ? model.NewCache() : null;
        var sequence = prompt.ToList();
        var generated = new List<int>();
        try
        {
            var pending = sequence.ToArray();                      // positions not yet in the cache
            while (generated.Count < options.MaxNewTokens)
            {
                using var scope = NewDisposeScope();
                Tensor logits;
                if (cache is not null)
                {
                    if (cache.Length + pending.Length > context)
                    {
                        cache.Dispose();
                        pending = sequence.Skip(sequence.Count - context / 2).ToArray();
                    }

                    logits = model.ForwardWithCache(Ids(pending), cache);
                }
                else
                {
                    logits = model.forward(Ids(sequence.Skip(Math.Max(0, sequence.Count - context)).ToArray()));
                }

                var next = Sample(logits[0, -1], options, generator);
                generated.Add(next);
                sequence.Add(next);
                pending = [next];
                onToken?.Invoke(next);
                if (next == model.Config.EosTokenId)
                {
                    break;
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        return generated;
    }

    private static Tensor Ids(int[] ids) => tensor(ids.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64).unsqueeze(0);

    private static int Sample(Tensor logits, GenerationOptions options, torch.Generator generator)
    {
        // Sampling is a few operations on one row: do it on the CPU, where the seeded generator lives.
        logits = logits.cpu();
        if (options.Temperature == 0)
        {
            return (int)logits.argmax().item<long>();
        }

        var scaled = logits / options.Temperature;                                       // (vocab)
        if (options.TopK is { } k && k < scaled.shape[0])
        {
            var kth = scaled.topk(k).values[-1];
            scaled = scaled.masked_fill(scaled < kth, double.NegativeInfinity);
        }

        if (options.TopP is { } p && p < 1)
        {
            var (sorted, order) = scaled.sort(descending: true);
            var cumulative = sorted.softmax(0).cumsum(0);
            // Drop a token when the tokens before it already reach p; the most likely token always stays.
            var drop = (cumulative - sorted.softmax(0)) > p;
            var mask = zeros_like(drop).scatter(0, order, drop);
            scaled = scaled.masked_fill(mask, double.NegativeInfinity);
        }

        var probabilities = scaled.softmax(0);
        return (int)probabilities.multinomial(1, generator: generator).item<long>();
    }
}

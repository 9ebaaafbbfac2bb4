using Serverless.Model.Data;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>
/// Draws (input, target) batches of random windows from a token stream. The windows of a step depend only on the
/// seed and the step number, so a resumed run sees exactly the batches an uninterrupted one would. With an
/// <paramref name="alignment"/> above 1, windows start only at multiples of it (documents of one length: images).
/// </summary>
/// <paramref name="pinned"/>, when given, draws every window instead (audio with classes: start and class, then samples).
internal sealed class BatchSampler(ITokenSource tokens, int batchSize, int blockSize, long seed, int alignment = 1, Media.PinnedWindows? pinned = null)
{
    private readonly int[] _window = new int[blockSize + 1];

    public (Tensor Input, Tensor Target) Batch(int step, int micro)
    {
        if (tokens.Count < blockSize + 1)
        {
            throw new InvalidOperationException($"The training split has {tokens.Count} tokens; a block of {blockSize} needs at least {blockSize + 1}.");
        }

        var data = new long[batchSize * (blockSize + 1)];
        var state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ ((ulong)step << 20) ^ (ulong)micro;
        var range = (ulong)((tokens.Count - blockSize - 1) / alignment + 1);
        for (var b = 0; b < batchSize; b++)
        {
            if (pinned is not null)
            {
                pinned.Fill(Next(ref state), _window);
            }
            else
            {
                tokens.Read((long)(Next(ref state) % range) * alignment, _window);
            }

            for (var i = 0; i <= blockSize; i++)
            {
                data[b * (blockSize + 1) + i] = _window[i];
            }
        }

        var all = tensor(data, dtype: ScalarType.Int64).view(batchSize, blockSize + 1);
        return (all[.., ..blockSize], all[.., 1..]);
    }

    private static ulong Next(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

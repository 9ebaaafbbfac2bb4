using Serverless.Model.Data;
using Serverless.Model.Gpt2;

namespace Serverless.Model.Media;

/// <summary>
/// Training windows for audio with classes. A clip is thousands of samples and the context a few hundred, so a window
/// at a random offset would almost never hold the clip's class token, and the class would condition only a clip's
/// first few milliseconds. Instead every window is the clip's start and class tokens followed by a stretch of its
/// samples (drawn uniformly over every clip and offset), the shape generation keeps when it slides past the context
/// (<see cref="Generation.MediaGenerator"/>) and evaluation scores (<see cref="Evaluation.Evaluator"/>).
/// </summary>
internal sealed class PinnedWindows
{
    private readonly ITokenSource _tokens;
    private readonly DocumentSpan[] _clips;
    private readonly long[] _ends;
    private readonly int _startToken;

    private PinnedWindows(ITokenSource tokens, DocumentSpan[] clips, int blockSize, int startToken)
    {
        _tokens = tokens;
        _clips = clips;
        _startToken = startToken;
        _ends = new long[clips.Length];
        long total = 0;
        for (var i = 0; i < clips.Length; i++)
        {
            total += clips[i].Length - 2 - (blockSize - 1) + 1;   // offsets at which B − 1 samples fit
            _ends[i] = total;
        }
    }

    /// <summary>The clips of an audio shard whose documents all have a class; null for anything else (plain windows then).</summary>
    public static IReadOnlyList<DocumentSpan>? ClassedClips(Gpt2Config config, ITokenSource tokens)
    {
        if (config.Media is not { Modality: Modality.Audio } media || tokens.Count < 3)
        {
            return null;
        }

        var spans = MediaDocuments.Spans(tokens, media);
        return spans.Count > 0 && spans.All(s => s.ClassToken is not null) ? spans : null;
    }

    /// <summary>Pinned windows of <paramref name="blockSize"/> for <paramref name="tokens"/>, or null when they do not apply.</summary>
    public static PinnedWindows? For(Gpt2Config config, ITokenSource tokens, int blockSize)
    {
        var clips = ClassedClips(config, tokens)?.Where(c => c.Length - 2 >= blockSize - 1).ToArray();
        return clips is { Length: > 0 } ? new PinnedWindows(tokens, clips, blockSize, config.Media!.StartToken) : null;
    }

    /// <summary>Fills <paramref name="window"/> (block size + 1 tokens) with start, class and samples, chosen by <paramref name="draw"/>.</summary>
    public void Fill(ulong draw, Span<int> window)
    {
        var pick = (long)(draw % (ulong)_ends[^1]);
        var clip = Array.BinarySearch(_ends, pick + 1);
        clip = clip >= 0 ? clip : ~clip;
        var offset = pick - (clip == 0 ? 0 : _ends[clip - 1]);
        window[0] = _startToken;
        window[1] = _clips[clip].ClassToken!.Value;
        _tokens.Read(_clips[clip].Start + 2 + offset, window[2..]);
    }
}

using Serverless.Model.Data;

namespace Serverless.Model.Media;

/// <summary>One prepared image or clip, read back from a shard.</summary>
/// <param name="Class">Its class index, or null.</param>
/// <param name="Values">Its value tokens.</param>
public sealed record MediaDocument(int? Class, int[] Values);

/// <summary>Where one prepared document lies in a shard.</summary>
/// <param name="Start">The position of its start token.</param>
/// <param name="Length">Its tokens, the start token included, up to the next start token.</param>
/// <param name="ClassToken">Its class token, or null.</param>
public sealed record DocumentSpan(long Start, int Length, int? ClassToken);

/// <summary>Reads prepared documents back out of a shard: a start token, an optional class token, then values.</summary>
public static class MediaDocuments
{
    /// <summary>Every document of <paramref name="shard"/> (which starts with a start token), in order.</summary>
    public static IReadOnlyList<DocumentSpan> Spans(ITokenSource shard, MediaSettings settings)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(settings);
        var spans = new List<DocumentSpan>();
        var buffer = new int[1 << 16];
        long start = -1;
        int? cls = null;
        for (long at = 0; at < shard.Count; at += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, shard.Count - at);
            shard.Read(at, buffer.AsSpan(0, n));
            for (var i = 0; i < n; i++)
            {
                if (buffer[i] == settings.StartToken)
                {
                    if (start >= 0)
                    {
                        spans.Add(new DocumentSpan(start, (int)(at + i - start), cls));
                    }

                    (start, cls) = (at + i, null);
                }
                else if (buffer[i] > settings.StartToken && at + i == start + 1)
                {
                    cls = buffer[i];
                }
            }
        }

        if (start >= 0)
        {
            spans.Add(new DocumentSpan(start, (int)(shard.Count - start), cls));
        }

        return spans;
    }

    /// <summary>
    /// The length of an image document in <paramref name="shard"/> (start token, class token if any, sub-pixels), when
    /// the shard starts with a start token and its first documents have that length; otherwise null.
    /// </summary>
    public static int? ImageDocumentLength(ITokenSource shard, MediaSettings settings)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentNullException.ThrowIfNull(settings);
        var head = new int[(int)Math.Min(shard.Count, 2L * (settings.ValuesPerImage + 2) + 1)];
        shard.Read(0, head);
        var starts = head.Select((t, i) => (t, i)).Where(x => x.t == settings.StartToken).Select(x => x.i).Take(3).ToList();
        if (starts.Count == 0 || starts[0] != 0)
        {
            return null;
        }

        // Every image is one length: the distance to the next start token, or the whole shard when it holds one image.
        var length = starts.Count >= 2 ? starts[1] : head.Length;
        return length is var l && (l == settings.ValuesPerImage + 1 || l == settings.ValuesPerImage + 2) && (starts.Count < 3 || starts[2] - starts[1] == l) ? l : null;
    }

    /// <summary>The first <paramref name="max"/> documents of <paramref name="shard"/>, each its class index and values.</summary>
    public static IReadOnlyList<MediaDocument> Read(ITokenSource shard, MediaSettings settings, int max = 4096)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return Spans(shard, settings).Where(s => s.Length > (s.ClassToken is null ? 1 : 2)).Take(max).Select(span =>
        {
            var skip = span.ClassToken is null ? 1 : 2;
            var values = new int[span.Length - skip];
            shard.Read(span.Start + skip, values);
            return new MediaDocument(span.ClassToken - settings.StartToken - 1, values);
        }).ToList();
    }
}

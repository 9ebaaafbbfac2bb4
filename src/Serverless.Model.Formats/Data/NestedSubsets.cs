namespace Serverless.Model.Data;

/// <summary>
/// Nested subsets of a training split's documents, for the data-efficiency curve: the documents (each starts with the
/// end-of-text token, as <see cref="DatasetPreparer"/> writes them) are put in one order drawn from a seed, and the
/// subset for a fraction f is the first ⌈f·N⌉ of them — so the subset for 0.1 lies inside the one for 0.3, and the
/// order depends on the documents and the seed only, never on the training seed. A subset is grown to at least
/// <c>minTokens</c> tokens (one training block) when the fraction alone would give fewer. Nothing is copied: the
/// subset reads through to the split.
/// </summary>
public sealed class NestedSubsets
{
    private readonly ITokenSource _source;
    private readonly (long Start, long Length)[] _ordered;

    /// <summary>Finds the documents of <paramref name="source"/> and orders them with <paramref name="seed"/>.</summary>
    public NestedSubsets(ITokenSource source, int endOfText, long seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        var starts = new List<long>();
        var buffer = new int[1 << 16];
        for (long at = 0; at < source.Count; at += buffer.Length)
        {
            var span = buffer.AsSpan(0, (int)Math.Min(buffer.Length, source.Count - at));
            source.Read(at, span);
            for (var i = 0; i < span.Length; i++)
            {
                if (span[i] == endOfText || (at == 0 && i == 0))
                {
                    starts.Add(at + i);
                }
            }
        }

        var documents = starts.Select((s, i) => (Start: s, Length: (i + 1 < starts.Count ? starts[i + 1] : source.Count) - s)).ToArray();
        new Random(unchecked((int)(seed ^ (seed >> 32)) ^ 0x5EED)).Shuffle(documents);
        _ordered = documents;
    }

    /// <summary>Documents in the split.</summary>
    public int Documents => _ordered.Length;

    /// <summary>The subset for <paramref name="fraction"/> (in (0, 1]), at least <paramref name="minTokens"/> tokens when the split has them.</summary>
    public Subset Take(double fraction, long minTokens = 0)
    {
        if (!(fraction > 0 && fraction <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "A fraction is in (0, 1].");
        }

        var count = Math.Max(1, (int)Math.Ceiling(fraction * _ordered.Length - 1e-9));
        long tokens = _ordered.Take(count).Sum(d => d.Length);
        while (tokens < minTokens && count < _ordered.Length)
        {
            tokens += _ordered[count++].Length;
        }

        return new Subset(_source, _ordered[..count], fraction);
    }

    /// <summary>Some of a split's documents, read as one token stream (in the drawn order).</summary>
    public sealed class Subset : ITokenSource
    {
        private readonly ITokenSource _source;
        private readonly (long Start, long Length)[] _documents;
        private readonly long[] _offsets;

        internal Subset(ITokenSource source, (long Start, long Length)[] documents, double fraction)
        {
            _source = source;
            _documents = documents;
            _offsets = new long[documents.Length + 1];
            for (var i = 0; i < documents.Length; i++)
            {
                _offsets[i + 1] = _offsets[i] + documents[i].Length;
            }

            Fraction = fraction;
        }

        /// <summary>The fraction asked for.</summary>
        public double Fraction { get; }

        /// <summary>Documents in the subset.</summary>
        public int Documents => _documents.Length;

        /// <inheritdoc />
        public long Count => _offsets[^1];

        /// <inheritdoc />
        public void Read(long start, Span<int> destination)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(start);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(start + destination.Length, Count, nameof(destination));
            var document = Array.BinarySearch(_offsets, start);
            document = document >= 0 ? document : ~document - 1;
            while (destination.Length > 0)
            {
                var within = start - _offsets[document];
                var take = (int)Math.Min(destination.Length, _documents[document].Length - within);
                _source.Read(_documents[document].Start + within, destination[..take]);
                destination = destination[take..];
                start += take;
                document++;
            }
        }
    }
}

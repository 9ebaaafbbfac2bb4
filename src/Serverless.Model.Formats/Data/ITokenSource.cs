namespace Serverless.Model.Data;

/// <summary>A stream of token ids that can be read at any position: a shard on disk or an array in memory.</summary>
public interface ITokenSource
{
    /// <summary>Number of tokens.</summary>
    long Count { get; }

    /// <summary>Fills <paramref name="destination"/> with the tokens starting at <paramref name="start"/>.</summary>
    void Read(long start, Span<int> destination);
}

/// <summary>Tokens held in memory.</summary>
public sealed class ArrayTokenSource(IReadOnlyList<int> tokens) : ITokenSource
{
    /// <inheritdoc />
    public long Count => tokens.Count;

    /// <inheritdoc />
    public void Read(long start, Span<int> destination)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = tokens[checked((int)(start + i))];
        }
    }
}

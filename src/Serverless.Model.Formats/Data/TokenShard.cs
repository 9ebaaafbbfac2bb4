namespace Serverless.Model.Data;

/// <summary>
/// llm.c's token shard format (<c>dev/data/data_common.py</c>): a header of 256 little-endian int32 —
/// magic 20240520, version 1, token count — followed by the tokens as little-endian uint16.
/// </summary>
public static class TokenShard
{
    /// <summary>The header's first int32.</summary>
    public const int Magic = 20240520;

    /// <summary>The header's second int32.</summary>
    public const int Version = 1;

    /// <summary>Header size in bytes (256 × int32).</summary>
    public const int HeaderBytes = 256 * sizeof(int);

    /// <summary>The largest token id a shard can hold.</summary>
    public const int MaxTokenId = ushort.MaxValue;

    internal static byte[] Header(long tokenCount)
    {
        var header = new byte[HeaderBytes];
        BitConverter.TryWriteBytes(header.AsSpan(0), Magic);
        BitConverter.TryWriteBytes(header.AsSpan(4), Version);
        BitConverter.TryWriteBytes(header.AsSpan(8), checked((int)tokenCount));
        return header;
    }
}

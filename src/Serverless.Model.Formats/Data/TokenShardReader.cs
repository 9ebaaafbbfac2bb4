using System.Buffers.Binary;

namespace Serverless.Model.Data;

/// <summary>
/// Reads a token shard, checking its header against the file, with random access and a small read buffer:
/// memory does not grow with the shard.
/// </summary>
public sealed class TokenShardReader : ITokenSource, IDisposable
{
    private readonly FileStream _stream;
    private readonly byte[] _buffer;

    private TokenShardReader(FileStream stream, long count, int bufferTokens)
    {
        _stream = stream;
        Count = count;
        _buffer = new byte[bufferTokens * sizeof(ushort)];
    }

    /// <inheritdoc />
    public long Count { get; }

    /// <summary>Opens and validates a shard; a file that is not one fails with <see cref="InvalidDataException"/> naming the problem.</summary>
    public static TokenShardReader Open(string path, int bufferTokens = 1 << 16)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Token shard {path} does not exist.", path);
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        try
        {
            Span<byte> header = stackalloc byte[12];
            if (stream.ReadAtLeast(header, 12, throwOnEndOfStream: false) < 12)
            {
                throw new InvalidDataException($"{path} is not a token shard: {stream.Length} bytes is shorter than the {TokenShard.HeaderBytes}-byte header.");
            }

            var magic = BinaryPrimitives.ReadInt32LittleEndian(header);
            var version = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
            var count = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
            if (magic != TokenShard.Magic)
            {
                throw new InvalidDataException($"{path} is not a token shard: magic number {magic}, expected {TokenShard.Magic}.");
            }

            if (version != TokenShard.Version)
            {
                throw new InvalidDataException($"{path} is token shard version {version}; only version {TokenShard.Version} is supported.");
            }

            var expected = TokenShard.HeaderBytes + (long)count * sizeof(ushort);
            if (count < 0 || stream.Length != expected)
            {
                throw new InvalidDataException($"{path} declares {count} tokens ({expected} bytes) but is {stream.Length} bytes: it is truncated or damaged.");
            }

            return new TokenShardReader(stream, count, bufferTokens);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Read(long start, Span<int> destination)
    {
        if (start < 0 || start + destination.Length > Count)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"Tokens {start}..{start + destination.Length} are outside the shard (0..{Count}).");
        }

        _stream.Position = TokenShard.HeaderBytes + start * sizeof(ushort);
        var done = 0;
        while (done < destination.Length)
        {
            var n = Math.Min(destination.Length - done, _buffer.Length / sizeof(ushort));
            _stream.ReadExactly(_buffer, 0, n * sizeof(ushort));
            for (var i = 0; i < n; i++)
            {
                destination[done + i] = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(i * sizeof(ushort)));
            }

            done += n;
        }
    }

    /// <summary>Reads the whole shard in chunks of at most the buffer size, start to end.</summary>
    public IEnumerable<int[]> ReadChunks()
    {
        var chunk = _buffer.Length / sizeof(ushort);
        for (long start = 0; start < Count; start += chunk)
        {
            var tokens = new int[(int)Math.Min(chunk, Count - start)];
            Read(start, tokens);
            yield return tokens;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();
}

using System.Buffers.Binary;

namespace Serverless.Model.Data;

/// <summary>
/// Writes a token shard in a fixed-size buffer, so memory does not grow with the data. The shard appears at its
/// path only when <see cref="Complete"/> succeeds (temporary file renamed into place); a writer disposed without
/// completing leaves nothing behind.
/// </summary>
public sealed class TokenShardWriter : IDisposable
{
    private readonly string _path;
    private readonly string _temp;
    private readonly FileStream _stream;
    private readonly byte[] _buffer;
    private int _buffered;
    private bool _completed;

    /// <summary>Starts a shard at <paramref name="path"/>, buffering <paramref name="bufferTokens"/> tokens at a time.</summary>
    public TokenShardWriter(string path, int bufferTokens = 1 << 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferTokens, 1);
        _path = path;
        _temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        _stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1);
        _buffer = new byte[bufferTokens * sizeof(ushort)];
        _stream.Write(new byte[TokenShard.HeaderBytes]);
    }

    /// <summary>Tokens written so far.</summary>
    public long Count { get; private set; }

    /// <summary>Appends tokens; each must be between 0 and 65535.</summary>
    public void Write(ReadOnlySpan<int> tokens)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        foreach (var token in tokens)
        {
            if ((uint)token > TokenShard.MaxTokenId)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), token, $"Token ids in a shard must be between 0 and {TokenShard.MaxTokenId}.");
            }

            if (_buffered == _buffer.Length)
            {
                Flush();
            }

            BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(_buffered), (ushort)token);
            _buffered += sizeof(ushort);
            Count++;
        }

        if (Count > int.MaxValue)
        {
            throw new InvalidOperationException($"A shard holds at most {int.MaxValue} tokens; split the data into more shards.");
        }
    }

    /// <summary>Writes the header and moves the shard into place.</summary>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        Flush();
        _stream.Position = 0;
        _stream.Write(TokenShard.Header(Count));
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(_temp, _path, overwrite: true);
        _completed = true;
    }

    /// <summary>Releases the file; an uncompleted shard is deleted.</summary>
    public void Dispose()
    {
        _stream.Dispose();
        if (!_completed)
        {
            File.Delete(_temp);
            _completed = true;
        }
    }

    private void Flush()
    {
        _stream.Write(_buffer, 0, _buffered);
        _buffered = 0;
    }
}

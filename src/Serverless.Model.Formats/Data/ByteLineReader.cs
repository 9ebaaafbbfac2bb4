namespace Serverless.Model.Data;

/// <summary>
/// Splits a stream into lines of raw bytes with a fixed buffer. A line longer than the limit is reported as too
/// long and skipped without ever being held whole, so a 100 MB single-line file costs no more memory than a small one.
/// </summary>
internal sealed class ByteLineReader(Stream stream, int maxLineBytes)
{
    private readonly byte[] _buffer = new byte[Math.Max(64 * 1024, maxLineBytes + 1)];
    private int _start;
    private int _end;
    private bool _eof;

    /// <summary>Number of the line last returned (1-based).</summary>
    public long LineNumber { get; private set; }

    /// <summary>
    /// The next line without its terminator (<c>\n</c> or <c>\r\n</c>); <paramref name="tooLong"/> is set, and the
    /// returned span empty, when the line exceeded the limit. Returns false at the end of the stream.
    /// </summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line, out bool tooLong)
    {
        tooLong = false;
        line = default;
        var scanFrom = _start;
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', scanFrom, _end - scanFrom);
            if (newline >= 0)
            {
                LineNumber++;
                if (tooLong)
                {
                    _start = newline + 1;
                    return true;
                }

                line = Trim(_buffer.AsSpan(_start, newline - _start));
                _start = newline + 1;
                if (line.Length > maxLineBytes)
                {
                    tooLong = true;
                    line = default;
                }

                return true;
            }

            if (_eof)
            {
                if (_start == _end && !tooLong)
                {
                    return false;
                }

                LineNumber++;
                line = tooLong ? default : Trim(_buffer.AsSpan(_start, _end - _start));
                _start = _end;
                if (line.Length > maxLineBytes)
                {
                    tooLong = true;
                    line = default;
                }

                return true;
            }

            if (_end - _start > maxLineBytes)
            {
                // Too long to keep: drop what we have and keep scanning for the end of this line.
                tooLong = true;
                _start = _end = 0;
            }
            else if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            scanFrom = _end;
            var read = stream.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0)
            {
                _eof = true;
            }

            _end += read;
        }
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> line) =>
        line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;
}

using System.Buffers.Binary;

namespace Serverless.Model.Media;

/// <summary>A WAV file that cannot be used, with a message a user can act on.</summary>
public sealed class AudioFormatException(string message) : Exception(message);

/// <summary>What a WAV file's <c>fmt </c> and <c>data</c> chunks declare.</summary>
/// <param name="Codec">The codec's name (PCM, IEEE float, μ-law, A-law).</param>
/// <param name="Channels">Channels.</param>
/// <param name="SampleRate">Samples per second per channel.</param>
/// <param name="BitsPerSample">Bits per sample.</param>
/// <param name="Frames">Sample frames in the data chunk.</param>
public sealed record WavHeader(string Codec, int Channels, int SampleRate, int BitsPerSample, long Frames);

/// <summary>
/// Reads WAV (RIFF/WAVE) files and writes them. Read: PCM 8 (unsigned), 16, 24 or 32-bit, IEEE float 32 or 64-bit,
/// G.711 μ-law and A-law, plain or <c>WAVE_FORMAT_EXTENSIBLE</c>; any channel count up to 32 (mixed to mono by the mean);
/// any rate from <see cref="MinSampleRate"/> to <see cref="MaxSampleRate"/> Hz (resampled with a Hann-windowed sinc,
/// low-passed at the lower Nyquist frequency). The header is checked against the file before anything is allocated:
/// a data chunk declared past the end of the file, zero samples, an unsupported codec (ADPCM, MP3-in-WAV, …) or more
/// than <see cref="MaxDataBytes"/> of audio are errors. Write: 16-bit PCM mono.
/// </summary>
public static class WavCodec
{
    /// <summary>Lowest sample rate accepted.</summary>
    public const int MinSampleRate = 1000;

    /// <summary>Highest sample rate accepted.</summary>
    public const int MaxSampleRate = 384_000;

    /// <summary>The most audio data read from one file (about 25 minutes of 16-bit stereo at 44.1 kHz).</summary>
    public const long MaxDataBytes = 256L << 20;

    /// <summary>Reads the header of <paramref name="path"/> and the offset of its data; throws <see cref="AudioFormatException"/>.</summary>
    public static WavHeader ReadHeader(string path) => ReadHeader(path, out _);

    private static WavHeader ReadHeader(string path, out long dataOffset)
    {
        using var stream = File.OpenRead(path);
        var length = stream.Length;
        if (length == 0)
        {
            throw new AudioFormatException("the file is empty (0 bytes).");
        }

        Span<byte> riff = stackalloc byte[12];
        if (stream.ReadAtLeast(riff, 12, throwOnEndOfStream: false) < 12 || !riff[..4].SequenceEqual("RIFF"u8) || !riff[8..].SequenceEqual("WAVE"u8))
        {
            var text = riff.ToArray().Take((int)Math.Min(12, length)).All(b => b is 9 or 10 or 13 or (>= 32 and < 127));
            throw new AudioFormatException(text
                ? "the file is named .wav but its content is text; audio must be a WAV (RIFF/WAVE) file."
                : "the file is not a WAV (RIFF/WAVE) file; convert it to WAV (for example with sox or ffmpeg).");
        }

        int tag = 0, channels = 0, rate = 0, bits = 0, blockAlign = 0;
        var sawFormat = false;
        Span<byte> chunk = stackalloc byte[8];
        while (stream.Position + 8 <= length)
        {
            stream.ReadExactly(chunk);
            var id = System.Text.Encoding.ASCII.GetString(chunk[..4]);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(chunk[4..]);
            var start = stream.Position;
            if (id == "fmt ")
            {
                if (size < 16 || start + size > length)
                {
                    throw new AudioFormatException($"the WAV's fmt chunk is {(size < 16 ? "too short" : "cut off by the end of the file")}; the file is corrupt.");
                }

                var fmt = new byte[Math.Min(size, 40)];
                stream.ReadExactly(fmt);
                tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
                channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(2));
                rate = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(fmt.AsSpan(4)));
                blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(12));
                bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(14));
                if (tag == 0xFFFE && fmt.Length >= 26)
                {
                    tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(24));   // the sub-format GUID's first two bytes
                }

                sawFormat = true;
            }
            else if (id == "data")
            {
                if (!sawFormat)
                {
                    throw new AudioFormatException("the WAV has its data chunk before its fmt chunk; the file is corrupt.");
                }

                var codec = Check(tag, channels, rate, bits, blockAlign);
                if (start + size > length)
                {
                    throw new AudioFormatException($"the WAV's header says its audio is {size:N0} bytes but the file holds only {length - start:N0} after the header; the file is truncated or its header is wrong.");
                }

                if (size > MaxDataBytes)
                {
                    throw new AudioFormatException($"the WAV holds {size:N0} bytes of audio, over the limit of {MaxDataBytes:N0}; cut it into shorter files.");
                }

                var frames = size / blockAlign;
                if (frames == 0)
                {
                    throw new AudioFormatException("the WAV has no samples (its data chunk is empty).");
                }

                dataOffset = start;
                return new WavHeader(codec, channels, rate, bits, frames);
            }

            stream.Position = start + size + (size & 1);
        }

        throw new AudioFormatException(sawFormat ? "the WAV has no data chunk (no samples)." : "the WAV has no fmt chunk; the file is corrupt or truncated.");
    }

    private static string Check(int tag, int channels, int rate, int bits, int blockAlign)
    {
        var codec = tag switch
        {
            1 when bits is 8 or 16 or 24 or 32 => "PCM",
            3 when bits is 32 or 64 => "IEEE float",
            6 when bits == 8 => "A-law",
            7 when bits == 8 => "μ-law",
            1 or 3 or 6 or 7 => throw new AudioFormatException($"the WAV's codec {Name(tag)} with {bits} bits per sample is not supported; use PCM 8, 16, 24 or 32-bit, or float 32 or 64-bit."),
            _ => throw new AudioFormatException($"the WAV's codec is {Name(tag)}, which is not supported; convert it to PCM (for example: sox in.wav -e signed-integer -b 16 out.wav)."),
        };
        if (channels is < 1 or > 32)
        {
            throw new AudioFormatException($"the WAV declares {channels} channels; 1 to 32 are supported.");
        }

        if (rate is < MinSampleRate or > MaxSampleRate)
        {
            throw new AudioFormatException($"the WAV declares a sample rate of {rate:N0} Hz; it must be between {MinSampleRate:N0} and {MaxSampleRate:N0} Hz.");
        }

        if (blockAlign != channels * bits / 8)
        {
            throw new AudioFormatException($"the WAV's block align is {blockAlign}, but {channels} channel(s) of {bits} bits need {channels * bits / 8}; the header is corrupt.");
        }

        return codec;
    }

    private static string Name(int tag) => tag switch
    {
        1 => "PCM",
        2 => "Microsoft ADPCM (format 2)",
        3 => "IEEE float",
        6 => "A-law",
        7 => "μ-law",
        0x11 => "IMA ADPCM (format 0x11)",
        0x31 => "GSM 6.10 (format 0x31)",
        0x50 => "MPEG (format 0x50)",
        0x55 => "MP3 (format 0x55)",
        _ => $"format 0x{tag:X4}",
    };

    /// <summary>Reads <paramref name="path"/> as mono samples in [−1, 1] at <paramref name="sampleRate"/> Hz.</summary>
    public static float[] Read(string path, int sampleRate)
    {
        var header = ReadHeader(path, out var offset);
        var bytes = new byte[header.Frames * header.Channels * header.BitsPerSample / 8];
        using (var stream = File.OpenRead(path))
        {
            stream.Position = offset;
            stream.ReadExactly(bytes);
        }

        var mono = new float[header.Frames];
        var width = header.BitsPerSample / 8;
        for (long f = 0; f < header.Frames; f++)
        {
            double sum = 0;
            for (var c = 0; c < header.Channels; c++)
            {
                sum += Sample(bytes.AsSpan((int)((f * header.Channels + c) * width), width), header.Codec);
            }

            mono[f] = (float)Math.Clamp(sum / header.Channels, -1, 1);
        }

        return Resample(mono, header.SampleRate, sampleRate);
    }

    private static double Sample(ReadOnlySpan<byte> b, string codec) => (codec, b.Length) switch
    {
        ("PCM", 1) => (b[0] - 128) / 128.0,
        ("PCM", 2) => BinaryPrimitives.ReadInt16LittleEndian(b) / 32768.0,
        ("PCM", 3) => ((b[2] << 24) | (b[1] << 16) | (b[0] << 8)) / 2147483648.0,
        ("PCM", 4) => BinaryPrimitives.ReadInt32LittleEndian(b) / 2147483648.0,
        ("IEEE float", 4) => Finite(BinaryPrimitives.ReadSingleLittleEndian(b)),
        ("IEEE float", 8) => Finite(BinaryPrimitives.ReadDoubleLittleEndian(b)),
        ("μ-law", 1) => G711MuLaw(b[0]) / 32768.0,
        ("A-law", 1) => G711ALaw(b[0]) / 32768.0,
        _ => throw new AudioFormatException($"unsupported sample layout {codec} {b.Length * 8}-bit."),
    };

    private static double Finite(double x) => double.IsFinite(x) ? x : 0;

    private static int G711MuLaw(byte value)
    {
        var u = ~value & 0xFF;
        var magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7);
        return (u & 0x80) != 0 ? 0x84 - magnitude : magnitude - 0x84;
    }

    private static int G711ALaw(byte value)
    {
        var a = value ^ 0x55;
        var exponent = (a >> 4) & 7;
        var magnitude = ((a & 0x0F) << 4) + 8;
        if (exponent > 0)
        {
            magnitude = (magnitude + 0x100) << (exponent - 1);
        }

        return (a & 0x80) != 0 ? magnitude : -magnitude;
    }

    /// <summary>
    /// Resamples with a Hann-windowed sinc (16 zero crossings each side), low-passed at the lower Nyquist frequency. The
    /// kernel is tabulated at 512 phases per input sample (the output position is rounded to 1/512 of a sample, far below
    /// the 8-bit μ-law step), so each output sample costs one multiply-add per tap.
    /// </summary>
    public static float[] Resample(float[] input, int fromRate, int toRate)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (fromRate == toRate)
        {
            return input;
        }

        const int Phases = 512;
        var ratio = (double)toRate / fromRate;
        var cutoff = Math.Min(1.0, ratio);
        var half = (int)Math.Ceiling(16 / cutoff);
        var taps = 2 * half;
        var table = new float[(Phases + 1) * taps];
        for (var phase = 0; phase <= Phases; phase++)
        {
            for (var j = 0; j < taps; j++)
            {
                var x = (double)phase / Phases + half - 1 - j;   // t − k for tap k = center − half + 1 + j
                var window = Math.Abs(x) >= half ? 0 : 0.5 * (1 + Math.Cos(Math.PI * x / half));
                var arg = Math.PI * cutoff * x;
                table[phase * taps + j] = (float)(cutoff * (Math.Abs(arg) < 1e-9 ? 1 : Math.Sin(arg) / arg) * window);
            }
        }

        var output = new float[Math.Max(1, (long)Math.Floor(input.Length * ratio))];
        for (var n = 0; n < output.Length; n++)
        {
            var t = n / ratio;
            var center = (int)Math.Floor(t);
            var row = (int)Math.Round((t - center) * Phases) * taps;
            var first = center - half + 1;
            double sum = 0;
            for (var j = Math.Max(0, -first); j < taps && first + j < input.Length; j++)
            {
                sum += input[first + j] * table[row + j];
            }

            output[n] = (float)Math.Clamp(sum, -1, 1);
        }

        return output;
    }

    /// <summary>μ-law companding (μ = 255) of a sample in [−1, 1] to one of 256 levels, as WaveNet quantizes audio.</summary>
    public static int MuLawEncode(float sample)
    {
        var x = Math.Clamp((double)sample, -1, 1);
        var y = Math.Sign(x) * Math.Log(1 + 255 * Math.Abs(x)) / Math.Log(256);
        return (int)Math.Floor((y + 1) / 2 * 255 + 0.5);
    }

    /// <summary>The sample a μ-law level stands for.</summary>
    public static float MuLawDecode(int level)
    {
        var y = 2.0 * Math.Clamp(level, 0, 255) / 255 - 1;
        return (float)(Math.Sign(y) * (Math.Pow(256, Math.Abs(y)) - 1) / 255);
    }

    /// <summary>Writes mono samples in [−1, 1] as a 16-bit PCM WAV.</summary>
    public static void Write(string path, ReadOnlySpan<float> samples, int sampleRate)
    {
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream);
        var dataBytes = samples.Length * 2;
        writer.Write("RIFF"u8);
        writer.Write(36 + dataBytes);
        writer.Write("WAVEfmt "u8);
        writer.Write(16);
        writer.Write((short)1);
        writer.Write((short)1);
        writer.Write(sampleRate);
        writer.Write(sampleRate * 2);
        writer.Write((short)2);
        writer.Write((short)16);
        writer.Write("data"u8);
        writer.Write(dataBytes);
        foreach (var s in samples)
        {
            writer.Write((short)Math.Clamp(Math.Round(s * 32767.0), short.MinValue, short.MaxValue));
        }
    }
}

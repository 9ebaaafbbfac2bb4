using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;
using Serverless.Model.Data;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.Media;

public sealed class MediaCodecTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Png(string name, int width, int height, Func<int, int, SKColor> color, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                bitmap.SetPixel(x, y, color(x, y));
            }
        }

        using var data = bitmap.Encode(format, 95);
        var path = _dir.File(name);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void Image_RoundTrip_TokensBackToPixelsWithinHalfALevel()
    {
        var path = Png("a.png", 16, 16, (x, y) => { var v = (byte)((x * 16 + y * 3) % 256); return new SKColor(v, v, v); });
        var settings = MediaSettings.ForImages(16, 1, 16);

        var values = ImageCodec.Read(path, 16, 1);
        var tokens = values.Select(v => v * settings.Levels / 256).ToArray();
        var back = MediaGenerator.ToPixels(tokens, settings.Levels);

        for (var i = 0; i < values.Length; i++)
        {
            values[i].ShouldBe((byte)((i % 16 * 16 + i / 16 * 3) % 256), $"pixel {i} read exactly at the model's own size");
            Math.Abs(back[i] - values[i]).ShouldBeLessThanOrEqualTo(256 / settings.Levels / 2, $"pixel {i}");
        }

        var written = _dir.File("back.png");
        ImageCodec.WriteGrid(written, [back], 16, 1, columns: 1, zoom: 1);
        var framed = ImageCodec.Read(written, 18, 1);   // the grid frames each image with a one-pixel grey line
        Enumerable.Range(0, 16 * 16).Select(i => framed[(1 + i / 16) * 18 + 1 + i % 16]).ShouldBe(back, "the writer's PNG reads back as the pixels it was given");
    }

    [Fact]
    public void Image_Rgb_256Levels_IsExact_AndAspectIsKeptWithBlackPadding()
    {
        var rgb = Png("rgb.png", 8, 8, (x, y) => new SKColor((byte)(x * 30), (byte)(y * 30), 200));
        var values = ImageCodec.Read(rgb, 8, 3);
        values.Length.ShouldBe(8 * 8 * 3);
        (values[3 * (2 * 8 + 5)], values[3 * (2 * 8 + 5) + 1], values[3 * (2 * 8 + 5) + 2]).ShouldBe(((byte)150, (byte)60, (byte)200));

        var wide = Png("wide.png", 32, 16, (_, _) => SKColors.White);
        var fitted = ImageCodec.Read(wide, 16, 1);
        fitted.Take(16 * 4).ShouldAllBe(v => v == 0, "rows above the 16 × 8 picture are black padding");
        fitted.Skip(16 * 4).Take(16 * 8).ShouldAllBe(v => v == 255);
        fitted.Skip(16 * 12).ShouldAllBe(v => v == 0);
    }

    [Fact]
    public void Image_TransparencyIsCompositedOverBlack_AndGrayscaleIsItuR601Luma()
    {
        var clear = Png("clear.png", 4, 4, (_, _) => new SKColor(255, 255, 255, 0));
        ImageCodec.Read(clear, 4, 1).ShouldAllBe(v => v == 0);
        var red = Png("red.png", 4, 4, (_, _) => new SKColor(255, 0, 0));
        ImageCodec.Read(red, 4, 1).ShouldAllBe(v => v == 76, "0.299 × 255");
    }

    [Fact]
    public void Image_Jpeg_IsRead()
    {
        var jpeg = Png("a.jpg", 16, 16, (x, _) => x < 8 ? SKColors.Black : SKColors.White, SKEncodedImageFormat.Jpeg);
        ImageCodec.ReadHeader(jpeg).ShouldBe(new ImageHeader("JPEG", 16, 16, 8, 1));
        var values = ImageCodec.Read(jpeg, 16, 1);
        values[0].ShouldBeLessThan((byte)30);
        values[15].ShouldBeGreaterThan((byte)225);
    }

    [Fact]
    public void Image_SixteenBitPng_IsConvertedToEightBits()
    {
        // A 4 × 4 16-bit grayscale PNG written by hand: value 0xABCD everywhere.
        var raw = new List<byte>();
        for (var y = 0; y < 4; y++)
        {
            raw.Add(0);
            for (var x = 0; x < 4; x++)
            {
                raw.AddRange(new byte[] { 0xAB, 0xCD });
            }
        }

        using var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(raw.ToArray());
        }

        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, 4);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 4);
        header[8] = 16;
        var png = new List<byte>([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        png.AddRange(Chunk("IHDR", header));
        png.AddRange(Chunk("IDAT", compressed.ToArray()));
        png.AddRange(Chunk("IEND", []));
        var path = _dir.File("deep.png");
        File.WriteAllBytes(path, png.ToArray());

        ImageCodec.ReadHeader(path).BitDepth.ShouldBe(16);
        ImageCodec.Read(path, 4, 1).ShouldAllBe(v => v == 0xAB || v == 0xAC);
    }

    private static byte[] Chunk(string type, byte[] data)
    {
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        var bytes = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)data.Length);
        typed.CopyTo(bytes, 4);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8 + data.Length), Crc32(typed));
        return bytes;
    }

    private static uint Crc32(byte[] data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
            }
        }

        return ~crc;
    }

    [Fact]
    public void Image_ABombIsRefusedByItsHeader_BeforeAnyDecoding()
    {
        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, 100_000);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), 100_000);
        header[8] = 8;
        var path = _dir.File("bomb.png");
        File.WriteAllBytes(path, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Chunk("IHDR", header), .. Chunk("IDAT", [1, 2, 3]), .. Chunk("IEND", [])]);

        var before = GC.GetAllocatedBytesForCurrentThread();
        Should.Throw<ImageFormatException>(() => ImageCodec.Read(path, 16, 1)).Message.ShouldContain("decompression bomb");
        (GC.GetAllocatedBytesForCurrentThread() - before).ShouldBeLessThan(1L << 20);
    }

    private string Wav(string name, int rate, int channels, int bits, int tag, Func<int, int, double> sample, int frames)
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        var block = channels * bits / 8;
        w.Write("RIFF"u8);
        w.Write(36 + frames * block);
        w.Write("WAVEfmt "u8);
        w.Write(16);
        w.Write((short)tag);
        w.Write((short)channels);
        w.Write(rate);
        w.Write(rate * block);
        w.Write((short)block);
        w.Write((short)bits);
        w.Write("data"u8);
        w.Write(frames * block);
        for (var f = 0; f < frames; f++)
        {
            for (var c = 0; c < channels; c++)
            {
                var x = sample(f, c);
                switch (tag, bits)
                {
                    case (1, 8): w.Write((byte)Math.Round(x * 127 + 128)); break;
                    case (1, 16): w.Write((short)Math.Round(x * 32767)); break;
                    case (1, 24): var v = (int)Math.Round(x * 8388607); w.Write((byte)v); w.Write((byte)(v >> 8)); w.Write((byte)(v >> 16)); break;
                    case (3, 32): w.Write((float)x); break;
                    default: throw new ArgumentException("layout");
                }
            }
        }

        var path = _dir.File(name);
        File.WriteAllBytes(path, stream.ToArray());
        return path;
    }

    [Theory]
    [InlineData(1, 8, 1, 0.01)]
    [InlineData(1, 16, 1, 0.0001)]
    [InlineData(1, 24, 2, 0.0001)]
    [InlineData(3, 32, 2, 0.0001)]
    public void Wav_PcmAndFloat_AnyChannels_ReadAsTheMonoMean(int tag, int bits, int channels, double tolerance)
    {
        double Sample(int f, int c) => 0.5 * Math.Sin(f * 0.1) * (c == 0 ? 1 : 0.5);
        var path = Wav($"t{tag}-{bits}-{channels}.wav", 8000, channels, bits, tag, Sample, 800);
        var samples = WavCodec.Read(path, 8000);
        samples.Length.ShouldBe(800);
        for (var f = 0; f < 800; f++)
        {
            var mean = Enumerable.Range(0, channels).Average(c => Sample(f, c));
            Math.Abs(samples[f] - mean).ShouldBeLessThan(tolerance, $"frame {f}");
        }
    }

    [Fact]
    public void Wav_RoundTrip_ThroughMuLaw_WithinHalfAStep()
    {
        var samples = Enumerable.Range(0, 4000).Select(i => (float)(0.8 * Math.Sin(i * 0.07) * Math.Exp(-i / 3000.0))).ToArray();
        var path = _dir.File("clip.wav");
        WavCodec.Write(path, samples, 8000);
        var read = WavCodec.Read(path, 8000);
        read.Length.ShouldBe(samples.Length);
        for (var i = 0; i < samples.Length; i++)
        {
            ((double)Math.Abs(read[i] - samples[i])).ShouldBeLessThan(2.0 / 32767, "16-bit PCM (written ×32767, rounded; read ÷32768)");
            var level = WavCodec.MuLawEncode(read[i]);
            level.ShouldBeInRange(0, 255);
            // Half a μ-law step: 1/255 of the companded range, times the slope ln(256)·(1 + 255|x|)/255, plus 5 % for the curve within a step.
            ((double)Math.Abs(WavCodec.MuLawDecode(level) - read[i])).ShouldBeLessThanOrEqualTo(Math.Log(256) * (1 + 255 * Math.Abs(read[i])) / (255.0 * 255) * 1.05 + 1e-7, $"sample {i}");
        }

        WavCodec.MuLawEncode(0).ShouldBeInRange(127, 128);
        (WavCodec.MuLawEncode(-1), WavCodec.MuLawEncode(1)).ShouldBe((0, 255));
    }

    [Fact]
    public void Wav_Resampling_KeepsWhatFits_AndFiltersWhatWouldAlias()
    {
        var low = WavCodec.Resample(Enumerable.Range(0, 16000).Select(i => (float)Math.Sin(2 * Math.PI * 1000 * i / 16000)).ToArray(), 16000, 8000);
        var high = WavCodec.Resample(Enumerable.Range(0, 16000).Select(i => (float)Math.Sin(2 * Math.PI * 6000 * i / 16000)).ToArray(), 16000, 8000);
        low.Length.ShouldBe(8000);
        static double Rms(IEnumerable<float> x) => Math.Sqrt(x.Skip(100).SkipLast(100).Average(v => v * v));
        Rms(low).ShouldBeInRange(0.66, 0.76, "a 1 kHz sine keeps its RMS of 1/√2");
        Rms(high).ShouldBeLessThan(0.05, "6 kHz is above the new Nyquist frequency (4 kHz): filtered, not folded to 2 kHz");
    }

    [Fact]
    public void MediaConfig_SavesAndLoadsBesideHuggingFacesFields_AndIsValidated()
    {
        var config = Pretraining.ConfigFor("tiny", "bytes", MediaSettings.ForImages(16, 1, 16) with { Classes = ["A", "B"] });
        var path = _dir.File("config.json");
        config.Save(path);
        var loaded = Gpt2Config.Load(path);
        (loaded.Media!.Modality, loaded.Media.ImageSize, loaded.Media.Channels, loaded.Media.Levels).ShouldBe((Modality.Image, 16, 1, 16));
        loaded.Media.Classes.ShouldBe(["A", "B"]);
        (loaded.VocabSize, loaded.BosTokenId, loaded.NPositions, loaded.TokenizerName).ShouldBe((16 + 1 + MediaSettings.MaxClasses, 16, 320, "image"));
        File.ReadAllText(path).ShouldContain("\"model_type\": \"gpt2\"");

        File.WriteAllText(path, File.ReadAllText(path).Replace("\"levels\": 16", "\"levels\": 32", StringComparison.Ordinal));
        Should.Throw<ModelFormatException>(() => Gpt2Config.Load(path)).Message.ShouldContain("must be the start token, 32");
        File.WriteAllText(path, File.ReadAllText(path).Replace("_token_id\": 16", "_token_id\": 32", StringComparison.Ordinal));
        Should.Throw<ModelFormatException>(() => Gpt2Config.Load(path)).Message.ShouldContain("vocab_size is 81");
    }

    [Fact]
    public void Modality_IsInferredFromTheFiles_AndAMixNamesAFileOfEachKind()
    {
        Modality.Infer(["a.png", "b.JPG"]).ShouldBe(Modality.Image);
        Modality.Infer(["a.wav"]).ShouldBe(Modality.Audio);
        Modality.Infer(["a.txt", "b.jsonl"]).ShouldBe(Modality.Text);
        Should.Throw<ArgumentException>(() => Modality.Infer(["x/a.png", "y/b.wav", "c.txt"])).Message
            .ShouldBe("The files mix modalities; a dataset is all text, all images or all audio: a.png is image, b.wav is audio, c.txt is text.");
    }

    [Fact]
    public void Preparer_ClassFolders_BecomeClassTokens_BaseClassesKeepTheirs_AndTheManifestRecordsThem()
    {
        var root = _dir.File("data");
        foreach (var (cls, i) in new[] { ("B", 0), ("B", 1), ("Z", 2), ("Z", 3), ("A", 4), ("A", 5) })
        {
            Directory.CreateDirectory(Path.Combine(root, cls));
            File.Copy(Png($"p{i}.png", 8, 8, (x, y) => new SKColor((byte)(x * 30 + i), (byte)(y * 30), 0)), Path.Combine(root, cls, $"{i}.png"));
        }

        var settings = MediaSettings.ForImages(8, 1, 8) with { Classes = ["A", "B"] };
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var prepared = new DatasetPreparer(new MediaDocumentSource(settings, root), new DocumentSplit(1, 0.2, 0.2)).Prepare(files, _dir.File("shards"));

        prepared.Classes.ShouldBe(["A", "B", "Z"], "A and B keep their tokens, Z takes the next");
        (prepared.Modality, prepared.Documents, prepared.TrainBytes + prepared.ValidationBytes + prepared.TestBytes).ShouldBe((Modality.Image, 6L, 6L * 64));
        using var train = TokenShardReader.Open(Path.Combine(_dir.File("shards"), DatasetPreparer.TrainFile));
        var tokens = new int[train.Count];
        train.Read(0, tokens);
        tokens[0].ShouldBe(settings.StartToken);
        tokens[1].ShouldBeInRange(settings.ClassToken(0), settings.ClassToken(2));
        tokens.Where((t, i) => i % 66 >= 2).ShouldAllBe(t => t < settings.Levels);
    }

    [Fact]
    public void Wav_G711MuLawAndALaw_DecodeAsTheStandardTables()
    {
        string Write(string name, int tag, byte[] data)
        {
            var path = _dir.File(name);
            using var w = new BinaryWriter(File.Create(path));
            w.Write("RIFF"u8);
            w.Write(36 + data.Length);
            w.Write("WAVEfmt "u8);
            w.Write(16);
            w.Write((short)tag);
            w.Write((short)1);
            w.Write(8000);
            w.Write(8000);
            w.Write((short)1);
            w.Write((short)8);
            w.Write("data"u8);
            w.Write(data.Length);
            w.Write(data);
            return path;
        }

        WavCodec.Read(Write("mu.wav", 7, [0xFF, 0x80, 0x00, 0x7F]), 8000).ShouldBe([0f, 32124 / 32768f, -32124 / 32768f, 0f]);
        WavCodec.Read(Write("a.wav", 6, [0xD5, 0x55, 0xAA]), 8000).ShouldBe([8 / 32768f, -8 / 32768f, 32256 / 32768f]);
    }

    [Fact]
    public void Wav_TooShortAfterResampling_IsAnErrorNamingTheFile_AndClipsOfOneFileShareTheirSplit()
    {
        var tiny = _dir.File("tiny.wav");
        WavCodec.Write(tiny, [0.1f], 44100);
        var errors = new DatasetErrors();
        new MediaDocumentSource(MediaSettings.ForAudio(8000), null).Read(tiny, errors).ShouldBeEmpty();
        errors.Items.Single().ToString().ShouldStartWith("tiny.wav: the WAV is too short");

        var clip = _dir.File("long.wav");
        WavCodec.Write(clip, Enumerable.Range(0, 8000 * 3).Select(i => (float)Math.Sin(i * 0.01 + i * i * 1e-7)).ToArray(), 8000);
        var clips = new MediaDocumentSource(MediaSettings.ForAudio(8000, 0.5), null).Read(clip, new DatasetErrors()).ToList();
        clips.Count.ShouldBe(6);
        clips.Select(c => c.SplitKey).Distinct().Count().ShouldBe(1, "every clip of one recording draws into the same split");
    }

    [Fact]
    public void MediaConfig_NullClassesReadAsNone_AndTheStartTokenMustBeBosAndEos()
    {
        var config = Pretraining.ConfigFor("tiny", "bytes", MediaSettings.ForAudio());
        var path = _dir.File("audio.json");
        config.Save(path);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"classes\": []", "\"classes\": null", StringComparison.Ordinal));
        Gpt2Config.Load(path).Media!.Classes.ShouldBeEmpty();

        File.WriteAllText(path, File.ReadAllText(path).Replace("\"bos_token_id\": 256", "\"bos_token_id\": 0", StringComparison.Ordinal));
        Should.Throw<ModelFormatException>(() => Gpt2Config.Load(path)).Message.ShouldContain("must be the start token, 256");
    }

    [Fact]
    public void Spec_MediaFields_AreChecked_AgainstTheirRangesAndTheBase()
    {
        new TrainingSpec { ImageSize = 2, Channels = 2, Levels = 300, SampleRate = 100 }.Problems().ShouldBe([
            "imageSize: is 2; it must be between 4 and 256.", "channels: is 2; use 1 (grayscale) or 3 (RGB).",
            "levels: is 300; it must be between 2 and 256.", "sampleRate: is 100; it must be between 1000 and 48000 Hz."]);
        var image = MediaSettings.ForImages(16, 1, 16);
        new TrainingSpec { ImageSize = 32 }.MediaProblems(image).Single().ShouldStartWith("imageSize: is 32, but the base model was trained with 16");
        new TrainingSpec { BlockSize = 64 }.MediaProblems(image).Single().ShouldContain("omit blockSize");
        new TrainingSpec { SampleRate = 8000 }.MediaProblems(image).Single().ShouldContain("no sample rate");
        new TrainingSpec { ImageSize = 16 }.MediaProblems(null).Single().ShouldContain("reads text");
        Should.Throw<ModelFormatException>(() => MediaSettings.ForImages(128, 3)).Message.ShouldContain("49,152 tokens an image; at most 4,096");
    }
}

using System.Formats.Tar;
using System.IO.Compression;
using Xunit.Abstractions;
using Serverless.Model.FineTuning;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;
using Serverless.Model.Tests.Training;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.Media;

/// <summary>
/// The image and audio demos' stories at test scale: bases pre-trained once on the shipped glyphs of 20 fonts (8 × 8,
/// 8 levels) and on three synthesized male voices (4 kHz), then fine-tuned on what they never saw: a calligraphic font,
/// and a female voice whose class token is new.
/// </summary>
public sealed class MediaTransferFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public MediaTransferFixture()
    {
        var glyphs = Extract("glyphs.tar.gz");
        var speech = Extract("speech.tar.gz");
        ImageBase = Pretrain(Path.Combine(glyphs, "base"), "image-base", new TrainingSpec { ImageSize = 8, Levels = 8 }.MediaFor(Modality.Image), blockSize: null);
        AudioBase = Pretrain(Path.Combine(speech, "base"), "audio-base", new TrainingSpec { SampleRate = 4000 }.MediaFor(Modality.Audio), blockSize: 128);
        ImageData = Path.Combine(glyphs, "new");
        AudioData = Path.Combine(speech, "new");
    }

    public string ImageBase { get; }

    public string AudioBase { get; }

    public string ImageData { get; }

    public string AudioData { get; }

    public string NewOutput(string name) => Path.Combine(_dir.Path, name);

    public static IReadOnlyList<string> Files(string root) => Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

    private string Extract(string archive)
    {
        var target = Path.Combine(_dir.Path, Path.GetFileNameWithoutExtension(Path.GetFileNameWithoutExtension(archive)));
        Directory.CreateDirectory(target);
        using var gzip = new GZipStream(File.OpenRead(Path.Combine(TrainingFixtures.RepositoryRoot, "data", "media", archive)), CompressionMode.Decompress);
        TarFile.ExtractToDirectory(gzip, target, overwriteFiles: true);
        return target;
    }

    private string Pretrain(string root, string name, MediaSettings media, int? blockSize)
    {
        var output = Path.Combine(_dir.Path, name);
        var spec = new TrainingSpec
        {
            Strategy = Strategies.Scratch, Steps = 150, BatchSize = 16, BlockSize = blockSize, LearningRate = 2e-3, WarmupSteps = 15,
            EvalEvery = 150, EvalTokens = 8000, CheckpointEvery = 1000, EarlyStoppingPatience = 0, Seed = 1, ValidationFraction = 0.05, TestFraction = 0.05,
        };
        Pretraining.Run(Files(root), output, "tiny", "bytes", spec, media: media, root: root);
        return output;
    }

    public void Dispose() => _dir.Dispose();
}

public class MediaTransferTests(MediaTransferFixture fixture, ITestOutputHelper output) : IClassFixture<MediaTransferFixture>
{
    private static readonly TrainingSpec Budget = new()
    {
        Steps = 40, BatchSize = 16, LearningRate = 2e-3, WarmupSteps = 5, EvalEvery = 20, EvalTokens = 8000, CheckpointEvery = 40,
        EarlyStoppingPatience = 0, Seed = 3, SampleTokens = 0, BiasProbes = "none", ValidationFraction = 0.15, TestFraction = 0.2,
    };

    private static TrainingSpec For(string strategy, string modality) => strategy switch
    {
        Strategies.Freeze => Budget with { Strategy = strategy, FreezeLayers = 2 },
        Strategies.Lora => Budget with { Strategy = strategy, LoraRank = 16, LoraAlpha = 32, LearningRate = 5e-3 },
        Strategies.Distill => Budget with { Strategy = strategy, StudentLayers = 3 },
        _ => Budget with { Strategy = strategy },
    } with { BlockSize = modality == Modality.Audio ? 128 : null };

    private FineTuneReport Run(string modality, string strategy, TrainingSpec? spec = null)
    {
        var (baseModel, data) = modality == Modality.Image ? (fixture.ImageBase, fixture.ImageData) : (fixture.AudioBase, fixture.AudioData);
        var report = FineTuneJob.Run(new FineTuneRequest(baseModel, MediaTransferFixture.Files(data), fixture.NewOutput($"{modality}-{strategy}-{Guid.NewGuid():N}"),
            spec ?? For(strategy, modality)) { DataRoot = data });
        output.WriteLine($"{modality} {strategy}: base {report.Base.Bits:F4}, scratch {report.Scratch!.Bits:F4}, candidate {report.Candidate.Bits:F4} " +
            (modality == Modality.Image ? "bits/dim" : "bits/sample"));
        return report;
    }

    [Theory]
    [InlineData(Modality.Image, Strategies.Full)]
    [InlineData(Modality.Image, Strategies.Freeze)]
    [InlineData(Modality.Image, Strategies.Lora)]
    [InlineData(Modality.Image, Strategies.Distill)]
    [InlineData(Modality.Audio, Strategies.Full)]
    [InlineData(Modality.Audio, Strategies.Freeze)]
    [InlineData(Modality.Audio, Strategies.Lora)]
    [InlineData(Modality.Audio, Strategies.Distill)]
    public void Run_OnANewStyle_TheCandidateBeatsScratchAndTheBase(string modality, string strategy)
    {
        var report = Run(modality, strategy);

        report.Modality.ShouldBe(modality);
        var summary = $"base {report.Base.Bits}, scratch {report.Scratch!.Bits}, candidate {report.Candidate.Bits}";
        report.Candidate.Bits!.Value.ShouldBeLessThan(report.Scratch.Bits!.Value, summary);
        report.Candidate.Bits!.Value.ShouldBeLessThan(report.Base.Bits!.Value, summary);
        (modality == Modality.Image ? report.Candidate.BitsPerDim : report.Candidate.BitsPerSample).ShouldNotBeNull();
        report.Candidate.BitsPerByte.ShouldBeNull("bits per byte is for text");
    }

    [Fact]
    public void Run_Images_WritesTheGridAndScoresSamplesWithTheClassifier_AndTheNewFontsClassesKeepTheirTokens()
    {
        var report = Run(Modality.Image, Strategies.Full, For(Strategies.Full, Modality.Image) with { SampleTokens = 1 });

        report.SampleFiles.ShouldBe(["samples.png"]);
        var quality = report.SampleQuality.ShouldNotBeNull();
        quality.Metric.ShouldBe("class_accuracy");
        quality.Real.ShouldBeGreaterThan(1.0 / 36 * 3, "the classifier recognises real held-out glyphs well above chance");
        foreach (var score in new[] { quality.Base, quality.Scratch!.Value, quality.Candidate })
        {
            score.ShouldBeInRange(0, 1);
        }

        var candidate = Directory.GetParent(Directory.EnumerateFiles(fixture.NewOutput(""), "samples.png", SearchOption.AllDirectories).First(f => f.Contains("candidate", StringComparison.Ordinal)))!.FullName;
        var config = Gpt2Config.Load(Path.Combine(candidate, "config.json"));
        config.Media!.Classes.ShouldBe(Gpt2Config.Load(Path.Combine(fixture.ImageBase, "config.json")).Media!.Classes, "the new font's classes are the base's characters");
        File.ReadAllText(Path.Combine(candidate, "report.md")).ShouldContain("![samples](samples.png)");
        var header = ImageCodec.ReadHeader(Path.Combine(candidate, "samples.png"));
        header.Width.ShouldBeGreaterThan(8 * 4 * 16, "16 columns of 8 × 8 images magnified 4×");
    }

    [Fact]
    public void Run_Audio_WritesClipsAndTheSpectralDistance_AndTheNewVoiceGetsAClassToken()
    {
        var report = Run(Modality.Audio, Strategies.Full, For(Strategies.Full, Modality.Audio) with { SampleTokens = 1 });

        report.SampleFiles.ShouldContain("samples/candidate-1.wav");
        report.SampleFiles.ShouldContain("samples/base-1.wav");
        report.SampleFiles.ShouldContain("samples/real-1.wav");
        var quality = report.SampleQuality.ShouldNotBeNull();
        quality.Metric.ShouldBe("log_spectral_distance_db");
        quality.HigherIsBetter.ShouldBeFalse();
        quality.Candidate.ShouldBeGreaterThan(0);
        var candidate = Directory.GetParent(Directory.EnumerateFiles(fixture.NewOutput(""), "candidate-1.wav", SearchOption.AllDirectories).First(f => f.Contains("candidate" + Path.DirectorySeparatorChar, StringComparison.Ordinal)))!.Parent!.FullName;
        var config = Gpt2Config.Load(Path.Combine(candidate, "config.json"));
        config.Media!.Classes.ShouldBe(["caribbean", "scotland", "us", "female"], "the base's voices keep their tokens; the new one takes the next");
        var clip = WavCodec.ReadHeader(Path.Combine(candidate, "samples", "candidate-1.wav"));
        (clip.SampleRate, clip.Channels, clip.Frames).ShouldBe((4000, 1, (long)(4000 * MediaSamples.ClipSeconds)));
    }
}

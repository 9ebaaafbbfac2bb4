using System.Text;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;
using Serverless.Model.Training;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.BadInput;

/// <summary>
/// Every malformed image and WAV dataset of the corpus (<c>corpus/media/</c>) through the real Prepare stage against an
/// image or an audio base model: each ends as a failed job whose errors name the file and say what is wrong, announced
/// by <c>DatasetRejected</c>; a good image dataset and a good audio dataset prepared alongside are dispatched. Then
/// mutated PNG and WAV files (fixed seed): the readers only ever record errors, with allocation bounded.
/// </summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class MediaRejectionTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("media-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly MediaSettings Image = MediaSettings.ForImages(8, 1, 8);
    private static readonly MediaSettings Audio = MediaSettings.ForAudio(4000, 0.5);

    private static void SaveBase(string home, string name, MediaSettings media)
    {
        using var model = new Gpt2Model(Pretraining.ConfigFor("tiny", "bytes", media) with { NLayer = 1, NEmbd = 32, NHead = 2 }, seed: 1);
        model.SavePretrained(Path.Combine(home, Containers.BaseModels, name));
    }

    [Fact]
    public async Task EveryMalformedImageAndWavDataset_IsRejectedNamingTheFile_AndGoodOnesStillPrepare()
    {
        var watch = Figures.Start();
        await using var cluster = new Cluster();
        await cluster.StartAsync();
        await cluster.StopAsync();
        using var pipeline = new Serverless.Cli.Pipeline.EmbeddedPipeline(cluster.Home, chaos: null);
        await pipeline.Bus.EnsureSubscriptionAsync(Entities.ModelEvents, "rejections", SubscriptionFilter.Types(nameof(DatasetRejected)));
        SaveBase(cluster.Home, "image-base", Image);
        SaveBase(cluster.Home, "audio-base", Audio);

        async Task Submit(string model, string modality, IEnumerable<(string Name, byte[] Content)> files)
        {
            var spec = Cluster.Spec();
            spec["baseModel"] = $"{modality}-base";
            if (modality == "image")
            {
                spec.Remove("blockSize");   // an image model trains on whole images
            }
            await cluster.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", spec.ToJsonString());
            foreach (var (name, content) in files)
            {
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/{name}", new MemoryStream(content));
            }

            await pipeline.Runtime.Prepare.HandleAsync(new FineTuneRequested(model, "upload", "upload"));
        }

        var cases = Corpus.Table("media/expected.tsv");
        var index = 0;
        foreach (var (keys, _) in cases)
        {
            var folder = Path.Combine(Corpus.Root, "media", keys[0]);
            await Submit($"media-{index++}", keys[1], Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                .Select(f => (Path.GetRelativePath(folder, f).Replace('\\', '/'), File.ReadAllBytes(f))));
        }

        await Submit("good-image", "image", Enumerable.Range(0, 6).Select(i => ($"{(char)('A' + i % 2)}/{i}.png", GoodPng(i))));
        await Submit("good-audio", "audio", Enumerable.Range(0, 4).Select(i => ($"{i}.wav", GoodWav(i))));

        var jobs = (await cluster.JobsAsync()).ToDictionary(j => j.Model);
        var wrong = new List<string>();
        index = 0;
        foreach (var (keys, expected) in cases)
        {
            var job = jobs[$"media-{index++}"];
            var said = job.Error + "\n" + string.Join("\n", job.DatasetErrors?.Select(e => $"{e.File}: {e.Message}") ?? []);
            var files = Directory.EnumerateFiles(Path.Combine(Corpus.Root, "media", keys[0]), "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
            if (job.State != JobState.Failed || !said.Contains(expected, StringComparison.Ordinal))
            {
                wrong.Add($"{keys[0]}: {job.State}, expected an error with \"{expected}\", got: {said.Trim()}");
            }
            else if (!job.DatasetErrors!.Any(e => files.Any(f => e.File.EndsWith(f!, StringComparison.Ordinal))))
            {
                wrong.Add($"{keys[0]}: the error names no file of the dataset: {said.Trim()}");
            }
        }

        var rejections = await PipelineRejectionTests.RejectionsAsync(pipeline);

        Figures.Add(new Figure("bad input — images and WAV through Prepare", cases.Count, 0, cases.Count + 2, cases.Count - wrong.Count, 0, 0, watch.Elapsed,
            $"{cases.Count} malformed image/audio datasets, {cases.Count - wrong.Count} rejected naming the file; the good image and audio datasets prepared"));
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
        cases.Count.ShouldBeGreaterThanOrEqualTo(24);
        Enumerable.Range(0, cases.Count).Select(i => $"media-{i}").Except(rejections).ShouldBeEmpty("every rejection is announced");
        foreach (var good in new[] { "good-image", "good-audio" })
        {
            // Prepared: its shards are in prepared/ (it is dispatched, or waits for the one trainer slot the first one holds).
            var job = jobs[good];
            (await pipeline.Blobs.GetAsync(Containers.Prepared, $"{job.JobId}/manifest.json")).ShouldNotBeNull($"{good}: {job.State} {job.Error}");
            job.State.ShouldBeOneOf(JobState.Dispatched, JobState.Preparing, JobState.Running);
        }
    }

    private static byte[] GoodPng(int seed)
    {
        using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(12, 10, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque));
        var pixels = bitmap.GetPixelSpan();
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * (seed + 3) % 256);
        }

        using var data = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static byte[] GoodWav(int seed)
    {
        var path = Path.GetTempFileName();
        try
        {
            WavCodec.Write(path, Enumerable.Range(0, 8000).Select(i => (float)(0.5 * Math.Sin(i * 0.05 * (seed + 1)))).ToArray(), 8000);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] Mutate(Random random, byte[] input)
    {
        var bytes = new List<byte>(input);
        var edits = random.Next(1, 5);
        for (var e = 0; e < edits && bytes.Count > 0; e++)
        {
            // Mostly the header: the first 64 bytes hold the sizes, chunk lengths, codec and rate.
            var at = random.Next(2) == 0 ? random.Next(Math.Min(64, bytes.Count)) : random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0: bytes[at] = (byte)random.Next(256); break;
                case 1: bytes[at] = (byte)(bytes[at] ^ (1 << random.Next(8))); break;
                case 2: bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 16))); break;
                case 3: bytes.RemoveRange(at, bytes.Count - at); break;
                default: bytes[at] = 0xFF; break;
            }
        }

        return [.. bytes];
    }

    [Fact]
    public void MutatedPngAndWavFiles_NeverCrashTheReaders_AndAllocationStaysBounded()
    {
        var watch = Figures.Start();
        var random = new Random(2028);
        var seeds = new (string Name, byte[] Bytes, MediaSettings Settings)[]
        {
            ("a.png", GoodPng(1), Image), ("b.wav", GoodWav(1), Audio),
        };
        var iterations = 400 * Figures.Repeats;
        var (rejected, accepted, worst) = (0, 0, 0L);
        var start = Environment.WorkingSet;
        var peak = start;
        for (var i = 0; i < iterations; i++)
        {
            var (name, seed, settings) = seeds[i % seeds.Length];
            var path = Path.Combine(_root, name);
            File.WriteAllBytes(path, Mutate(random, seed));
            var errors = new DatasetErrors();
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                _ = new MediaDocumentSource(settings, null).Read(path, errors).Sum(d => d.Tokens().Count);
            }
            catch (Exception e)
            {
                throw new ShouldAssertException($"iteration {i} ({name}) crashed the reader: {e}\ninput: {Convert.ToBase64String(File.ReadAllBytes(path))}");
            }

            worst = Math.Max(worst, GC.GetAllocatedBytesForCurrentThread() - before);
            peak = Math.Max(peak, Environment.WorkingSet);
            (rejected, accepted) = errors.Any ? (rejected + 1, accepted) : (rejected, accepted + 1);
        }

        Figures.Add(new Figure("fuzz — mutated PNG and WAV files", iterations, 0, 0, 0, 0, 0, watch.Elapsed,
            $"0 crashes; {rejected} rejected with errors, {accepted} still readable; at most {worst >> 10} KiB managed for one input, peak working set {peak >> 20} MiB"));
        worst.ShouldBeLessThan(16L << 20, "managed allocation per input is bounded by the header limits");
        (peak - start).ShouldBeLessThan(512L << 20, "native decoding is bounded too: the header limits cap a decode at 96 MiB");
        rejected.ShouldBeGreaterThan(iterations / 4, "the mutations do break files");
    }
}

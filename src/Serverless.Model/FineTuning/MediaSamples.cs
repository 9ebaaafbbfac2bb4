using Serverless.Model.Data;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;

namespace Serverless.Model.FineTuning;

/// <summary>
/// The samples and the sample-quality score of an image or audio job. Images: <c>samples.png</c>, a grid whose rows are
/// real held-out images, then base, scratch and candidate samples, one column per class asked for (or unconditional
/// samples without classes). Audio: <c>samples/{real,base,scratch,candidate}-{n}.wav</c>.
/// </summary>
public static class MediaSamples
{
    /// <summary>The image grid's file name.</summary>
    public const string GridFile = "samples.png";

    /// <summary>Seconds per generated audio clip.</summary>
    public const double ClipSeconds = 0.5;

    /// <summary>Clips generated per model.</summary>
    public const int Clips = 2;

    /// <summary>Writes the samples into <paramref name="directory"/>; returns the score (null when it cannot be computed) and the files written (relative).</summary>
    public static (SampleQuality? Quality, IReadOnlyList<string> Files) Write(
        string directory, MediaSettings settings, Gpt2Model baseModel, Gpt2Model? scratch, Gpt2Model candidate, ITokenSource train, ITokenSource test, long seed)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Directory.CreateDirectory(directory);
        // Images are a few hundred tokens each; audio clips thousands: read at most what the scores need.
        var max = settings.Modality == Modality.Image ? 4096 : 64;
        var trainDocs = MediaDocuments.Read(train, settings, max);
        var testDocs = MediaDocuments.Read(test, settings, max);
        return settings.Modality == Modality.Image
            ? Images(directory, settings, baseModel, scratch, candidate, trainDocs, testDocs, seed)
            : Audio(directory, settings, baseModel, scratch, candidate, trainDocs, testDocs, seed);
    }

    private static (SampleQuality?, IReadOnlyList<string>) Images(
        string directory, MediaSettings settings, Gpt2Model baseModel, Gpt2Model? scratch, Gpt2Model candidate,
        IReadOnlyList<MediaDocument> trainDocs, IReadOnlyList<MediaDocument> testDocs, long seed)
    {
        var dims = settings.ValuesPerImage;
        var whole = trainDocs.Where(d => d.Values.Length == dims).ToList();
        var classes = whole.Where(d => d.Class is not null).Select(d => d.Class!.Value).Distinct().Order().ToList();
        var perClass = classes.Count == 0 ? 0 : Math.Clamp(72 / classes.Count, 1, 4);
        var rows = classes.Count == 0 ? Enumerable.Repeat<int?>(null, 8).ToList() : classes.SelectMany(c => Enumerable.Repeat<int?>(c, perClass)).ToList();
        int[][] Generate(Gpt2Model m) => MediaGenerator.Generate(m, rows, dims, seed);
        var fromBase = Generate(baseModel);
        var fromScratch = scratch is null ? null : Generate(scratch);
        var fromCandidate = Generate(candidate);

        // The grid: one column per class shown (the first sample of each), rows real / base / scratch / candidate.
        var shown = classes.Count == 0 ? Enumerable.Range(0, rows.Count).ToList() : classes.Take(16).Select(c => rows.IndexOf(c)).ToList();
        var real = classes.Count == 0
            ? testDocs.Concat(whole).Where(d => d.Values.Length == dims).Take(shown.Count).Select(d => d.Values).ToList()
            : classes.Take(16).Select(c => testDocs.Concat(whole).FirstOrDefault(d => d.Class == c && d.Values.Length == dims)?.Values ?? new int[dims]).ToList();
        var grid = new List<int[]>();
        grid.AddRange(real.Concat(Enumerable.Repeat(new int[dims], shown.Count - real.Count)));
        foreach (var set in new[] { fromBase, fromScratch, fromCandidate }.OfType<int[][]>())
        {
            grid.AddRange(shown.Select(i => set[i]));
        }

        ImageCodec.WriteGrid(Path.Combine(directory, GridFile), grid.Select(v => MediaGenerator.ToPixels(v, settings.Levels)).ToList(),
            settings.ImageSize!.Value, settings.Channels!.Value, shown.Count);

        SampleQuality? quality = null;
        var labelled = whole.Where(d => d.Class is not null).Select(d => (d.Values, d.Class!.Value)).ToList();
        if (classes.Count >= 2)
        {
            using var classifier = new SampleQualityScores.ImageClassifier(labelled, settings.Classes.Count, settings.Levels, seed);
            double Accuracy(int[][] set) => classifier.Accuracy(set.Select((v, i) => (v, rows[i]!.Value)).ToList());
            var heldOut = testDocs.Where(d => d.Class is not null && d.Values.Length == dims).Select(d => (d.Values, d.Class!.Value)).ToList();
            quality = new SampleQuality("class_accuracy", SampleQualityScores.ImageDescription, HigherIsBetter: true,
                heldOut.Count > 0 ? classifier.Accuracy(heldOut) : double.NaN, Accuracy(fromBase), fromScratch is null ? null : Accuracy(fromScratch),
                Accuracy(fromCandidate), rows.Count);
        }

        return (quality, [GridFile]);
    }

    private static (SampleQuality?, IReadOnlyList<string>) Audio(
        string directory, MediaSettings settings, Gpt2Model baseModel, Gpt2Model? scratch, Gpt2Model candidate,
        IReadOnlyList<MediaDocument> trainDocs, IReadOnlyList<MediaDocument> testDocs, long seed)
    {
        var rate = settings.SampleRate!.Value;
        var length = (int)(rate * ClipSeconds);
        var classes = trainDocs.Where(d => d.Class is not null).Select(d => d.Class!.Value).Distinct().Order().ToList();
        var rows = Enumerable.Range(0, Clips).Select(i => classes.Count == 0 ? (int?)null : classes[i % classes.Count]).ToList();
        var samples = Path.Combine(directory, "samples");
        Directory.CreateDirectory(samples);
        var files = new List<string>();
        var testSpectrum = SampleQualityScores.MeanLogSpectrum(testDocs.Select(d => MediaGenerator.ToSamples(d.Values)));
        foreach (var (doc, i) in testDocs.Take(Clips).Select((d, i) => (d, i)))
        {
            files.Add(WriteClip($"real-{i + 1}.wav", MediaGenerator.ToSamples(doc.Values)));
        }

        double Distance(string name, Gpt2Model m)
        {
            var clips = MediaGenerator.Generate(m, rows, length, seed).Select(MediaGenerator.ToSamples).ToList();
            for (var i = 0; i < clips.Count; i++)
            {
                files.Add(WriteClip($"{name}-{i + 1}.wav", clips[i]));
            }

            return SampleQualityScores.LogSpectralDistance(SampleQualityScores.MeanLogSpectrum(clips), testSpectrum);
        }

        var fromBase = Distance("base", baseModel);
        double? fromScratch = scratch is null ? null : Distance("scratch", scratch);
        var fromCandidate = Distance("candidate", candidate);
        var real = SampleQualityScores.LogSpectralDistance(SampleQualityScores.MeanLogSpectrum(trainDocs.Select(d => MediaGenerator.ToSamples(d.Values))), testSpectrum);
        var quality = testDocs.Count == 0 ? null : new SampleQuality("log_spectral_distance_db", SampleQualityScores.AudioDescription, HigherIsBetter: false,
            real, fromBase, fromScratch, fromCandidate, Clips);
        return (quality, files);

        string WriteClip(string name, float[] clip)
        {
            WavCodec.Write(Path.Combine(samples, name), clip, rate);
            return "samples/" + name;
        }
    }
}

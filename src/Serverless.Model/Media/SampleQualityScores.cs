using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Media;

/// <summary>Sample-quality measures that need no downloaded model.</summary>
public static class SampleQualityScores
{
    /// <summary>What the image score measures, for the report.</summary>
    public const string ImageDescription =
        "A two-layer perceptron (values → 128 ReLU → classes; Adam, 300 full-batch steps, seeded) is trained on the job's real " +
        "training images; each model generates images asked for each class, and the score is the share the classifier assigns to " +
        "the class asked for. Real held-out (test) images give the ceiling. It measures whether samples are recognisable as their " +
        "class in the style of this dataset; it says nothing about diversity, and a classifier trained on a few images is easily fooled.";

    /// <summary>What the audio score measures, for the report.</summary>
    public const string AudioDescription =
        "Mean log-spectral distance in dB: the log power spectrum (256-sample Hann frames, hop 128) averaged over all frames of a " +
        "set of clips, compared bin by bin (RMS over bins) with the same average over the held-out (test) clips. Real training clips " +
        "against the test clips give the floor. It measures whether the timbre and spectral balance match the dataset (a voice); " +
        "it ignores timing and intelligibility.";

    /// <summary>A small classifier of images by class, trained on real images.</summary>
    public sealed class ImageClassifier : IDisposable
    {
        private readonly nn.Module<Tensor, Tensor> _net;
        private readonly int _levels;

        /// <summary>Trains on <paramref name="images"/> (values and class index).</summary>
        public ImageClassifier(IReadOnlyList<(int[] Values, int Class)> images, int classes, int levels, long seed)
        {
            ArgumentNullException.ThrowIfNull(images);
            _levels = levels;
            var dims = images[0].Values.Length;
            torch.random.manual_seed(seed);
            _net = nn.Sequential(nn.Linear(dims, 128), nn.ReLU(), nn.Linear(128, classes));
            using var x = Input(images.Select(i => i.Values).ToList());
            using var y = tensor(images.Select(i => (long)i.Class).ToArray());
            using var optimizer = optim.Adam(_net.parameters(), 3e-3);
            for (var step = 0; step < 300; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                nn.functional.cross_entropy(_net.forward(x), y).backward();
                optimizer.step();
            }

            _net.eval();
        }

        /// <summary>The share of <paramref name="images"/> classified as the class given with each.</summary>
        public double Accuracy(IReadOnlyList<(int[] Values, int Class)> images)
        {
            ArgumentNullException.ThrowIfNull(images);
            if (images.Count == 0)
            {
                return 0;
            }

            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            var predicted = _net.forward(Input(images.Select(i => i.Values).ToList())).argmax(1).data<long>().ToArray();
            return images.Select((image, i) => predicted[i] == image.Class ? 1.0 : 0.0).Average();
        }

        private Tensor Input(List<int[]> values) =>
            tensor(values.SelectMany(v => v).Select(v => v / (float)(_levels - 1)).ToArray()).view(values.Count, values[0].Length);

        /// <inheritdoc />
        public void Dispose() => _net.Dispose();
    }

    private const int Frame = 256;
    private const int Hop = 128;

    /// <summary>The mean log power spectrum (dB, <c>Frame / 2 + 1</c> bins) over every frame of <paramref name="clips"/>.</summary>
    public static double[] MeanLogSpectrum(IEnumerable<float[]> clips)
    {
        ArgumentNullException.ThrowIfNull(clips);
        var sum = new double[Frame / 2 + 1];
        var frames = 0;
        var window = new FftSharp.Windows.Hanning().Create(Frame);
        foreach (var clip in clips)
        {
            for (var start = 0; start + Frame <= clip.Length; start += Hop)
            {
                var buffer = new Complex[Frame];
                for (var i = 0; i < Frame; i++)
                {
                    buffer[i] = new Complex(clip[start + i] * window[i], 0);
                }

                FftSharp.FFT.Forward(buffer);
                for (var k = 0; k <= Frame / 2; k++)
                {
                    sum[k] += 10 * Math.Log10(buffer[k].Magnitude * buffer[k].Magnitude + 1e-10);
                }

                frames++;
            }
        }

        return frames == 0 ? sum : sum.Select(s => s / frames).ToArray();
    }

    /// <summary>RMS over bins of the difference of two mean log spectra (dB).</summary>
    public static double LogSpectralDistance(double[] a, double[] b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Average());
    }
}

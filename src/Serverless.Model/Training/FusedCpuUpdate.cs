using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>The constants of one AdamW step.</summary>
internal sealed record Update(double Beta1, double Beta2, double Epsilon, double LearningRate, double WeightDecay, double GradScale, double Correction1, double Correction2);

/// <summary>
/// AdamW's update for float32 CPU tensors in one pass over memory: for every element it reads the parameter, its
/// gradient and both moments once and writes the parameter and moments once, where libtorch's element-wise
/// operations take about ten passes. The update is memory-bound (a 124M model's four tensors are 2 GB), so the
/// passes are its cost. Elements are split into chunks that run on all cores.
/// </summary>
internal static unsafe class FusedCpuUpdate
{
    private const int Chunk = 1 << 16;

    /// <summary>Whether the four tensors are contiguous float32 CPU tensors of one size.</summary>
    public static bool Applies(Tensor parameter, Tensor grad, Tensor m, Tensor v)
    {
        Tensor[] all = [parameter, grad, m, v];
        return all.All(t => t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous() && t.numel() == parameter.numel())
            && parameter.numel() * sizeof(float) < int.MaxValue;
    }

    public static void Run(IReadOnlyList<(Tensor Parameter, Tensor Grad, Tensor M, Tensor V, bool Decay)> tensors, Update update)
    {
        var pointers = tensors.Select(t => (P: Address(t.Parameter), G: Address(t.Grad), M: Address(t.M), V: Address(t.V), Length: t.Parameter.numel(), t.Decay)).ToArray();
        var chunks = new List<(int Tensor, long Start, int Count)>();
        for (var i = 0; i < pointers.Length; i++)
        {
            for (var start = 0L; start < pointers[i].Length; start += Chunk)
            {
                chunks.Add((i, start, (int)Math.Min(Chunk, pointers[i].Length - start)));
            }
        }

        Parallel.For(0, chunks.Count, c =>
        {
            var (index, start, count) = chunks[c];
            var t = pointers[index];
            Apply((float*)t.P + start, (float*)t.G + start, (float*)t.M + start, (float*)t.V + start, count, update, t.Decay);
        });
    }

    private static nint Address(Tensor tensor) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Apply(float* p, float* g, float* m, float* v, int count, Update u, bool decay)
    {
        var beta1 = (float)u.Beta1;
        var beta2 = (float)u.Beta2;
        var keep = decay && u.WeightDecay > 0 ? (float)(1 - u.LearningRate * u.WeightDecay) : 1f;
        var stepSize = (float)(u.LearningRate / u.Correction1);
        var inverseCorrection2 = (float)(1 / u.Correction2);
        var epsilon = (float)u.Epsilon;
        var scale = (float)u.GradScale;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var width = Vector<float>.Count;
            var (vb1, vob1, vb2, vob2) = (new Vector<float>(beta1), new Vector<float>(1 - beta1), new Vector<float>(beta2), new Vector<float>(1 - beta2));
            var (vkeep, vstep, vinv, veps, vscale) = (new Vector<float>(keep), new Vector<float>(stepSize), new Vector<float>(inverseCorrection2), new Vector<float>(epsilon), new Vector<float>(scale));
            for (; i <= count - width; i += width)
            {
                var grad = Vector.Load(g + i) * vscale;
                var first = vb1 * Vector.Load(m + i) + vob1 * grad;
                var second = vb2 * Vector.Load(v + i) + vob2 * grad * grad;
                var parameter = Vector.Load(p + i) * vkeep - vstep * first / (Vector.SquareRoot(second) * vinv + veps);
                first.Store(m + i);
                second.Store(v + i);
                parameter.Store(p + i);
            }
        }

        for (; i < count; i++)
        {
            var grad = g[i] * scale;
            m[i] = beta1 * m[i] + (1 - beta1) * grad;
            v[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
            p[i] = p[i] * keep - stepSize * m[i] / (MathF.Sqrt(v[i]) * inverseCorrection2 + epsilon);
        }
    }
}

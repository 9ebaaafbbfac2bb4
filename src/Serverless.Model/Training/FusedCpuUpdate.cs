using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>The constants of one AdamW step.</summary>
internal sealed record Update(double Beta1, double Beta2, double Epsilon, double LearningRate, double WeightDecay, double GradScale, double Correction1, double Correction2);

/// <summary>
/// One parameter's share of a fused update: the float32 parameter, its gradient as float32 and/or bfloat16 (a
/// bfloat16 weight copy's, see <see cref="Gpt2.WeightCopies"/>; the two are summed), both moments, and the bfloat16
/// copy to rewrite from the updated parameter, if any.
/// </summary>
internal sealed record FusedSlot(Tensor Parameter, Tensor? Grad, Tensor? CopyGrad, Tensor M, Tensor V, Tensor? Copy, bool Decay);

/// <summary>
/// AdamW's update for float32 CPU tensors in one pass over memory: for every element it reads the parameter, its
/// gradient and both moments once and writes the parameter and moments once (and its bfloat16 copy, when it has one),
/// where libtorch's element-wise operations take about ten passes. The update is memory-bound (a 124M model's four
/// tensors are 2 GB), so the passes are its cost. Elements are split into chunks that run on all cores.
/// </summary>
internal static unsafe class FusedCpuUpdate
{
    private const int Chunk = 1 << 16;

    /// <summary>Whether the slot's tensors are contiguous CPU tensors of one size: float32, and bfloat16 for a copy and its gradient.</summary>
    public static bool Applies(FusedSlot slot)
    {
        var n = slot.Parameter.numel();
        bool Fits(Tensor? t, ScalarType dtype) => t is null || (t.device_type == DeviceType.CPU && t.dtype == dtype && t.is_contiguous() && t.numel() == n);
        return Fits(slot.Parameter, ScalarType.Float32) && Fits(slot.Grad, ScalarType.Float32) && Fits(slot.M, ScalarType.Float32)
            && Fits(slot.V, ScalarType.Float32) && Fits(slot.CopyGrad, ScalarType.BFloat16) && Fits(slot.Copy, ScalarType.BFloat16)
            && (slot.Grad ?? slot.CopyGrad) is not null && n * sizeof(float) < int.MaxValue;
    }

    public static void Run(IReadOnlyList<FusedSlot> slots, Update update)
    {
        var chunks = Chunks(slots);
        Parallel.For(0, chunks.Count, c => Apply(chunks[c].At, chunks[c].Count, update, chunks[c].Decay));
    }

    /// <summary>
    /// The sum of the squares of the slots' gradients (each slot's float32 and bfloat16 parts summed first), in one
    /// parallel pass over them all, summed in double.
    /// </summary>
    public static double SumOfSquares(IReadOnlyList<FusedSlot> slots)
    {
        var chunks = Chunks(slots);
        var sums = new double[chunks.Count];   // one per chunk, summed in order: the same norm every run
        Parallel.For(0, chunks.Count, c => sums[c] = SumOfSquares(chunks[c].At, chunks[c].Count));
        return sums.Sum();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double SumOfSquares(Addresses at, int count)
    {
        var i = 0;
        var sum = 0.0;
        if (Vector.IsHardwareAccelerated)
        {
            var width = Vector<float>.Count;
            var (low, high) = (Vector<double>.Zero, Vector<double>.Zero);
            for (; i <= count - 2 * width; i += 2 * width)
            {
                var (first, second) = Gradients(at, i, width);

                // Squares in float32 (as libtorch's norm of a float32 tensor), two at a time, then summed in double.
                Vector.Widen(first * first + second * second, out var a, out var b);
                (low, high) = (low + a, high + b);
            }

            sum = Vector.Sum(low + high);
        }

        for (; i < count; i++)
        {
            var g = Gradient(at, i);
            sum += g * g;
        }

        return sum;
    }

    /// <summary>The slots cut into chunks of at most <see cref="Chunk"/> elements, each with its first element's addresses.</summary>
    private static List<(Addresses At, int Count, bool Decay)> Chunks(IReadOnlyList<FusedSlot> slots)
    {
        var chunks = new List<(Addresses, int, bool)>();
        foreach (var slot in slots)
        {
            var pointers = new Pointers(slot);
            for (var start = 0L; start < pointers.Length; start += Chunk)
            {
                chunks.Add((pointers.From(start), (int)Math.Min(Chunk, pointers.Length - start), slot.Decay));
            }
        }

        return chunks;
    }

    /// <summary>
    /// The gradient of elements i … i + 2·width − 1 as two float vectors: the bfloat16 part widened (one vector of its
    /// bits holds as many elements as two of floats) plus the float32 part.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector<float> Low, Vector<float> High) Gradients(Addresses at, int i, int width)
    {
        var (low, high) = (Vector<float>.Zero, Vector<float>.Zero);
        if (at.H is not null)
        {
            Vector.Widen(Vector.Load(at.H + i), out var lowBits, out var highBits);
            (low, high) = (Vector.AsVectorSingle(Vector.ShiftLeft(lowBits, 16)), Vector.AsVectorSingle(Vector.ShiftLeft(highBits, 16)));
        }

        return at.G is null ? (low, high) : (low + Vector.Load(at.G + i), high + Vector.Load(at.G + i + width));
    }

    private static nint Address(Tensor? tensor) => tensor is null ? 0 : (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));

    /// <summary>The float32 value of a bfloat16: its 16 bits are the float's upper half.</summary>
    private static float Widen(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>
    /// A float32 rounded to bfloat16 to nearest, ties to even, as libtorch's cast rounds; a NaN stays a NaN (the
    /// rounding's carry would turn some into an infinity or a zero, and hide a divergence).
    /// </summary>
    private static ushort Round(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        return float.IsNaN(value) ? QuietNaN : (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>bfloat16's quiet NaN, as libtorch writes it.</summary>
    private const ushort QuietNaN = 0x7FC0;

    private static float Gradient(Addresses at, int i) =>
        (at.G is null ? 0f : at.G[i]) + (at.H is null ? 0f : Widen(at.H[i]));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Apply(Addresses at, int count, Update u, bool decay)
    {
        var beta1 = (float)u.Beta1;
        var beta2 = (float)u.Beta2;
        var keep = decay && u.WeightDecay > 0 ? (float)(1 - u.LearningRate * u.WeightDecay) : 1f;
        var stepSize = (float)(u.LearningRate / u.Correction1);
        var inverseCorrection2 = (float)(1 / u.Correction2);
        var epsilon = (float)u.Epsilon;
        var scale = (float)u.GradScale;
        float* p = at.P, m = at.M, v = at.V;
        var copy = at.Copy;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // Two float vectors per iteration: one vector of bfloat16 bits holds as many elements as two of floats.
            var width = Vector<float>.Count;
            var (vb1, vob1, vb2, vob2) = (new Vector<float>(beta1), new Vector<float>(1 - beta1), new Vector<float>(beta2), new Vector<float>(1 - beta2));
            var (vkeep, vstep, vinv, veps, vscale) = (new Vector<float>(keep), new Vector<float>(stepSize), new Vector<float>(inverseCorrection2), new Vector<float>(epsilon), new Vector<float>(scale));
            for (; i <= count - 2 * width; i += 2 * width)
            {
                var (low, high) = Gradients(at, i, width);
                var first = Step(p + i, m + i, v + i, low * vscale);
                var second = Step(p + i + width, m + i + width, v + i + width, high * vscale);
                if (copy is not null)
                {
                    Vector.Narrow(RoundBits(first), RoundBits(second)).Store(copy + i);
                }
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            Vector<float> Step(float* pi, float* mi, float* vi, Vector<float> grad)
            {
                var firstMoment = vb1 * Vector.Load(mi) + vob1 * grad;
                var secondMoment = vb2 * Vector.Load(vi) + vob2 * grad * grad;
                var parameter = Vector.Load(pi) * vkeep - vstep * firstMoment / (Vector.SquareRoot(secondMoment) * vinv + veps);
                firstMoment.Store(mi);
                secondMoment.Store(vi);
                parameter.Store(pi);
                return parameter;
            }

            static Vector<uint> RoundBits(Vector<float> value)
            {
                var bits = Vector.AsVectorUInt32(value);
                var odd = Vector.BitwiseAnd(Vector.ShiftRightLogical(bits, 16), Vector<uint>.One);
                var rounded = Vector.ShiftRightLogical(bits + new Vector<uint>(0x7FFF) + odd, 16);
                return Vector.ConditionalSelect(Vector.AsVectorUInt32(Vector.Equals(value, value)), rounded, new Vector<uint>(QuietNaN));   // NaN ≠ NaN
            }
        }

        for (; i < count; i++)
        {
            var grad = Gradient(at, i) * scale;
            m[i] = beta1 * m[i] + (1 - beta1) * grad;
            v[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
            p[i] = p[i] * keep - stepSize * m[i] / (MathF.Sqrt(v[i]) * inverseCorrection2 + epsilon);
            if (copy is not null)
            {
                copy[i] = Round(p[i]);
            }
        }
    }

    /// <summary>A slot's base addresses; 0 for the tensors it does not have.</summary>
    private readonly struct Pointers(FusedSlot slot)
    {
        private readonly nint _p = Address(slot.Parameter), _g = Address(slot.Grad), _h = Address(slot.CopyGrad);
        private readonly nint _m = Address(slot.M), _v = Address(slot.V), _copy = Address(slot.Copy);

        public long Length { get; } = slot.Parameter.numel();

        public Addresses From(long start) => new(
            (float*)_p + start, _g == 0 ? null : (float*)_g + start, _h == 0 ? null : (ushort*)_h + start,
            (float*)_m + start, (float*)_v + start, _copy == 0 ? null : (ushort*)_copy + start);
    }

    /// <summary>
    /// The addresses of one chunk's first element: parameter, float32 gradient, bfloat16 gradient (the copy's), moments
    /// and bfloat16 copy; null for those the slot does not have.
    /// </summary>
    private readonly struct Addresses(float* p, float* g, ushort* h, float* m, float* v, ushort* copy)
    {
        public float* P { get; } = p;

        public float* G { get; } = g;

        public ushort* H { get; } = h;

        public float* M { get; } = m;

        public float* V { get; } = v;

        public ushort* Copy { get; } = copy;
    }
}

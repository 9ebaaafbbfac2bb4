using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>
/// An affine projection (GPT-2's Conv1D, held as a Linear's [out, in] weight) that can carry a low-rank adapter:
/// y = x·Wᵀ + b + (alpha / r)·dropout(x)·Aᵀ·Bᵀ, with A (r × in) and B (out × r, starting at zero).
/// </summary>
internal sealed class Projection : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] private readonly Parameter _weight;
    [ComponentName(Name = "bias")] private readonly Parameter _bias;
    private Parameter? _loraA;
    private Parameter? _loraB;
    private Dropout? _loraDropout;
    private double _loraScale;

    public Projection(int inFeatures, int outFeatures) : base("projection")
    {
        _weight = new Parameter(empty(outFeatures, inFeatures));
        _bias = new Parameter(zeros(outFeatures));
        RegisterComponents();
    }

    public Parameter Weight => _weight;

    public Parameter Bias => _bias;

    public bool HasAdapter => _loraA is not null;

    public Parameter? LoraA => _loraA;

    public Parameter? LoraB => _loraB;

    /// <summary>When set, the matmul runs in this dtype (bfloat16 on CPUs with AVX-512 BF16 is ~4× float32) and the result returns to float32.</summary>
    public ScalarType? ComputeType { get; set; }

    /// <summary>
    /// The weight already in <see cref="ComputeType"/>, kept in step with the float32 weight by whoever set it (see
    /// <see cref="WeightCopies"/>); the matmul then uses it instead of casting the weight on every forward.
    /// </summary>
    internal Tensor? WeightCopy { get; set; }

    public override Tensor forward(Tensor x)
    {
        var y = ComputeType is { } dtype
            ? MixedLinear(x, _weight, WeightCopy, _bias, dtype)
            : nn.functional.linear(x, _weight, _bias);                                   // (B, T, out)
        if (_loraA is null)
        {
            return y;
        }

        using var dropped = _loraDropout is null ? x.alias() : _loraDropout.forward(x);
        using var down = nn.functional.linear(dropped, _loraA);                           // (B, T, r)
        using var up = nn.functional.linear(down, _loraB!);                               // (B, T, out)
        using (y)
        {
            using Scalar scale = _loraScale;   // kept alive for the call (Scalars)
            return y.add(up, scale);
        }
    }

    /// <summary>
    /// x·Wᵀ + b computed in <paramref name="dtype"/>, returned in x's dtype; gradients flow back to each operand in its
    /// own dtype. The weight's <paramref name="copy"/> in <paramref name="dtype"/>, when there is one (see
    /// <see cref="WeightCopies"/>), is used as it is and gets the weight's gradient in that dtype; else the weight is cast.
    /// </summary>
    internal static Tensor MixedLinear(Tensor x, Tensor weight, Tensor? copy, Tensor? bias, ScalarType dtype)
    {
        using var xl = x.to(dtype);
        using var wl = copy?.dtype == dtype ? copy.alias() : weight.to(dtype);
        using var bl = bias?.to(dtype);
        using var y = nn.functional.linear(xl, wl, bl);
        return y.to(x.dtype);
    }

    /// <summary>Adds a rank-<paramref name="rank"/> adapter; B starts at zero, so the function is unchanged until trained.</summary>
    public void AddAdapter(int rank, double alpha, double dropout, Generator? generator)
    {
        var (outFeatures, inFeatures) = (_weight.shape[0], _weight.shape[1]);
        var bound = 1.0 / Math.Sqrt(inFeatures);
        using (no_grad())
        {
            // On the weight's device: a model moved to CUDA before the adapters are added must not get CPU adapters.
            // The initial values are drawn on the CPU (where the generator lives), so every device gets the same adapter.
            using var initial = empty(rank, inFeatures).uniform_(-bound, bound, generator);
            _loraA = new Parameter(initial.to(_weight.device));
            _loraB = new Parameter(zeros(outFeatures, rank, device: _weight.device));
        }

        _loraScale = alpha / rank;
        register_parameter("lora_A", _loraA);
        register_parameter("lora_B", _loraB);
        if (dropout > 0)
        {
            _loraDropout = nn.Dropout(dropout);
            register_module("lora_dropout", _loraDropout);
        }
    }

    /// <summary>The weight with the adapter folded in: W + (alpha / r)·B·A. A new tensor without gradient.</summary>
    public Tensor MergedWeight()
    {
        using var noGrad = no_grad();
        return _loraA is null ? _weight.detach().clone() : _weight.detach().add(_loraB!.matmul(_loraA), alpha: _loraScale);
    }
}

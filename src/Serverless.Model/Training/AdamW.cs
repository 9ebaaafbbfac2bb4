using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>
/// AdamW (decoupled weight decay) with in-place updates and state we own, so a checkpoint is a plain safetensors file
/// of moments. Weight decay applies to matrices (dim ≥ 2) only, as in GPT-2 recipes: not to biases or LayerNorms.
/// </summary>
internal sealed class AdamW : IDisposable
{
    private readonly List<Slot> _slots;

    public AdamW(IEnumerable<(string Name, Parameter Parameter)> parameters, double beta1 = 0.9, double beta2 = 0.95, double epsilon = 1e-8)
    {
        (Beta1, Beta2, Epsilon) = (beta1, beta2, epsilon);
        _slots = parameters.Select(p => new Slot(p.Name, p.Parameter, p.Parameter.dim() >= 2,
            zeros_like(p.Parameter).DetachFromDisposeScope(), zeros_like(p.Parameter).DetachFromDisposeScope())).ToList();
    }

    public double Beta1 { get; }

    public double Beta2 { get; }

    public double Epsilon { get; }

    /// <summary>Updates taken so far.</summary>
    public long StepCount { get; set; }

    public IEnumerable<Parameter> Parameters => _slots.Select(s => s.Parameter);

    /// <summary>
    /// One AdamW update of every parameter that has a gradient, its gradient first multiplied by
    /// <paramref name="gradScale"/> (gradient clipping's factor); then the gradients are released (see
    /// <see cref="ClearGradients"/>).
    /// Float32 CPU tensors take one fused pass that reads each parameter, gradient and moment once; anything else
    /// (CUDA, other dtypes) takes libtorch's element-wise operations, which compute the same update.
    /// </summary>
    public void Step(double learningRate, double weightDecay, double gradScale = 1.0)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        StepCount++;
        var update = new Update(Beta1, Beta2, Epsilon, learningRate, weightDecay, gradScale,
            1 - Math.Pow(Beta1, StepCount), Math.Sqrt(1 - Math.Pow(Beta2, StepCount)));
        var fused = new List<FusedSlot>();
        foreach (var slot in _slots)
        {
            var part = slot.Fused();
            if (part.Grad is null && part.CopyGrad is null)
            {
                continue;
            }

            if (Fused && FusedCpuUpdate.Applies(part))
            {
                fused.Add(part);
                continue;
            }

            var grad = slot.Gradient()!;
            if (gradScale != 1.0)
            {
                grad.mul_(gradScale);
            }

            if (slot.Decay && weightDecay > 0)
            {
                slot.Parameter.mul_(1 - learningRate * weightDecay);
            }

            slot.M.mul_(Beta1).add_(grad, alpha: 1 - Beta1);
            slot.V.mul_(Beta2).addcmul_(grad, grad, value: 1 - Beta2);
            var denominator = slot.V.sqrt().div_(update.Correction2).add_(Epsilon);
            slot.Parameter.addcdiv_(slot.M, denominator, value: -learningRate / update.Correction1);
            slot.Copy?.copy_(slot.Parameter);
        }

        if (fused.Count > 0)
        {
            FusedCpuUpdate.Run(fused, update);
        }

        ClearGradients();
    }

    /// <summary>
    /// Hands the optimizer low-precision copies of its parameters (<see cref="Gpt2.WeightCopies.ByName"/>): a copy's
    /// gradient is added to its parameter's, and every step rewrites the copy from the updated parameter. Null forgets them.
    /// </summary>
    public void UseCopies(IReadOnlyDictionary<string, Tensor>? copies)
    {
        foreach (var slot in _slots)
        {
            slot.Copy = copies?.GetValueOrDefault(slot.Name);
        }
    }

    /// <summary>Whether float32 CPU parameters take the fused update (the default); false forces libtorch's element-wise operations.</summary>
    public bool Fused { get; set; } = true;

    /// <summary>
    /// The 2-norm of all gradients together (a parameter's and its copy's summed), the norm
    /// <c>torch.nn.utils.clip_grad_norm_</c> clips by; 0 when no parameter has a gradient.
    /// </summary>
    public double GradientNorm()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parts = _slots.Select(s => s.Fused()).Where(p => p.Grad is not null || p.CopyGrad is not null).ToList();
        if (parts.Count == 0)
        {
            return 0;
        }

        // One pass over every gradient on the CPU; libtorch's norm per tensor elsewhere.
        if (Fused && parts.All(FusedCpuUpdate.Applies))
        {
            return Math.Sqrt(FusedCpuUpdate.SumOfSquares(parts));
        }

        var norms = _slots.Select(s => s.Gradient()).OfType<Tensor>().Select(g => g.norm()).ToArray();
        return stack(norms).norm().item<float>();
    }

    /// <summary>
    /// Releases every gradient (PyTorch's <c>zero_grad(set_to_none=True)</c>), so the next backward stores each new
    /// gradient instead of adding it to zeros: for the 124M model (0.5 GB of float32 gradients) that saves writing the
    /// zeros and, in the next backward, reading both addends and writing the sum — 1 GB read and 1 GB written a step.
    /// </summary>
    public void ClearGradients()
    {
        foreach (var slot in _slots)
        {
            slot.Parameter.grad = null;
            if (slot.Copy is not null)
            {
                slot.Copy.grad = null;
            }
        }
    }

    /// <summary>The moments as named tensors (<c>m.{name}</c>, <c>v.{name}</c>) for a checkpoint.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> State() =>
        _slots.SelectMany(s => new[] { ("m." + s.Name, s.M), ("v." + s.Name, s.V) });

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        using var noGrad = no_grad();
        foreach (var slot in _slots)
        {
            if (!state.TryGetValue("m." + slot.Name, out var m) || !state.TryGetValue("v." + slot.Name, out var v))
            {
                throw new InvalidDataException($"The checkpoint's optimizer state has no moments for '{slot.Name}'; it was written for another strategy or model.");
            }

            slot.M.copy_(m);
            slot.V.copy_(v);
        }

        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var slot in _slots)
        {
            slot.M.Dispose();
            slot.V.Dispose();
        }
    }

    private sealed record Slot(string Name, Parameter Parameter, bool Decay, Tensor M, Tensor V)
    {
        /// <summary>The parameter's low-precision copy (see <see cref="UseCopies"/>), if it has one.</summary>
        public Tensor? Copy { get; set; }

        public FusedSlot Fused() => new(Parameter, Parameter.grad, Copy?.grad, M, V, Copy, Decay);

        /// <summary>The whole gradient in float32 (the parameter's plus its copy's), or null when it has none; within the step's dispose scope.</summary>
        public Tensor? Gradient() => (Parameter.grad, Copy?.grad) switch
        {
            (null, null) => null,
            (var own, null) => own,
            (null, var copied) => copied.to(ScalarType.Float32),
            (var own, var copied) => own.add(copied.to(ScalarType.Float32)),
        };
    }
}

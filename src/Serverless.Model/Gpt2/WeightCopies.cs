using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>
/// Copies of a model's matmul weights (every projection's, and the token embedding for the tied head) in the dtype
/// the model multiplies in, made once instead of cast from float32 on every forward. A trainable copy is a leaf with
/// a gradient of its own, in that dtype; the optimizer adds it to the float32 weight's update and rewrites the copy
/// from the updated weight (<see cref="Training.AdamW.UseCopies"/>), so the copy is always what the cast would give.
/// For bfloat16 that saves, per parameter and step, the forward's cast (read 4 bytes, write 2), the backward's cast
/// of the gradient back to float32 (read 2, write 4) and half the optimizer's gradient read, where the optimizer
/// writes 2 bytes more: about 1.5 GB of memory traffic a step for GPT-2 124M.
/// A frozen weight's copy has no gradient and never changes. The float32 weights stay the truth: checkpoints,
/// evaluation (always float32) and the saved model read them. Dispose detaches and frees the copies.
/// </summary>
internal sealed class WeightCopies : IDisposable
{
    private readonly Gpt2Model _model;
    private readonly Dictionary<string, Tensor> _copies;

    private WeightCopies(Gpt2Model model, Dictionary<string, Tensor> copies) => (_model, _copies) = (model, copies);

    /// <summary>
    /// Makes the copies in <paramref name="dtype"/> and hands them to the model's projections and head. A weight that
    /// trains gets a trainable copy only when <paramref name="trainable"/> (one micro-batch a step: accumulating
    /// micro-batches' gradients in bfloat16 would round each sum, where the float32 weight's gradient does not); else it
    /// keeps the cast per forward and gets no copy. For a model that only runs forward (<paramref name="inference"/>: a
    /// distillation teacher), every weight gets a copy without a gradient, whatever its <c>requires_grad</c> says.
    /// </summary>
    public static WeightCopies Attach(Gpt2Model model, ScalarType dtype, bool trainable, bool inference = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var copies = new Dictionary<string, Tensor>();
        using var noGrad = no_grad();
        Tensor? CopyOf(string name, Tensor weight)
        {
            var learns = weight.requires_grad && !inference;
            if (learns && !trainable)
            {
                return null;
            }

            using var detached = weight.detach();
            var copy = detached.to(dtype).requires_grad_(learns);
            copies[name] = copy;
            return copy;
        }

        foreach (var (name, projection) in model.Projections())
        {
            projection.WeightCopy = CopyOf(name + ".weight", projection.Weight);
        }

        model.HeadWeightCopy = CopyOf("wte.weight", model.TokenEmbedding.weight!);
        return new WeightCopies(model, copies);
    }

    /// <summary>Every copy, by its float32 weight's state-dict name (<c>h.0.attn.c_attn.weight</c>, <c>wte.weight</c>).</summary>
    public IReadOnlyDictionary<string, Tensor> ByName => _copies;

    public void Dispose()
    {
        foreach (var (_, projection) in _model.Projections())
        {
            projection.WeightCopy = null;
        }

        _model.HeadWeightCopy = null;
        foreach (var copy in _copies.Values)
        {
            copy.Dispose();
        }

        _copies.Clear();
    }
}

using Serverless.Model.Gpt2;
using Serverless.Model.Training;
using TorchSharp.Modules;
using AdamW = Serverless.Model.Training.AdamW;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Training;

/// <summary>The fused CPU update computes what libtorch's element-wise AdamW computes.</summary>
public sealed class AdamWTests
{
    private static readonly ArrayTokenSourceBatch Batch = new();

    [Fact]
    public void FusedStep_MatchesTheElementWiseStep_WithDecayAndAGradientScale()
    {
        using var fusedModel = new Gpt2Model(TrainingFixtures.Config, seed: 5);
        using var plainModel = new Gpt2Model(TrainingFixtures.Config, seed: 5);
        fusedModel.named_parameters().ShouldAllBe(p => p.parameter.is_contiguous() && p.parameter.dtype == ScalarType.Float32,
            "every parameter takes the fused path (CPU float32, contiguous)");
        using var fused = new AdamW(Named(fusedModel)) { Fused = true };
        using var plain = new AdamW(Named(plainModel)) { Fused = false };
        for (var step = 0; step < 4; step++)
        {
            Backward(fusedModel, step);
            Backward(plainModel, step);
            var scale = step == 2 ? 0.37 : 1.0;
            fused.Step(3e-3, 0.1, scale);
            plain.Step(3e-3, 0.1, scale);
        }

        // Four steps move a weight by up to about 4·lr = 0.012; the two computations round differently (a fused
        // multiply-add, 1/c₂ multiplied rather than divided), so they agree to a thousandth of that, not bit for bit.
        foreach (var ((name, a), (_, b)) in fusedModel.named_parameters().Zip(plainModel.named_parameters()))
        {
            using var difference = (a - b).abs().max();
            difference.item<float>().ShouldBeLessThan(1.2e-5f, name);
            a.grad.ShouldBeNull($"{name}: the step releases the gradient");
        }

        foreach (var (first, second) in fused.State().Zip(plain.State()))
        {
            var (name, m, n) = (first.Name, first.Tensor, second.Tensor);
            using var difference = (m - n).abs().max();
            using var scale = n.abs().max();
            difference.item<float>().ShouldBeLessThanOrEqualTo(1e-5f * scale.item<float>() + 1e-12f, name);
        }
    }

    [Fact]
    public void FusedRun_OnSizesWithATailAndSeveralChunks_MatchesTheElementWiseUpdate()
    {
        const int length = 2 * 65536 + 13;
        using var generator = new TorchSharp.torch.Generator(9);
        Tensor Random() => randn(length, generator: generator);
        using var p = Random();
        using var g = Random();
        using var m = Random().abs_().mul_(0.01);
        using var v = Random().abs_().mul_(0.001);
        using var eg = g.clone();
        using var ep = p.clone();
        using var em = m.clone();
        using var ev = v.clone();
        FusedCpuUpdate.Applies(new FusedSlot(p, g, null, m, v, null, true)).ShouldBeTrue();
        var update = new Update(0.9, 0.95, 1e-8, 1e-3, 0.1, 0.5, 1 - Math.Pow(0.9, 3), Math.Sqrt(1 - Math.Pow(0.95, 3)));
        using (var noGrad = no_grad())
        {
            // The element-wise update, as AdamW.Step does it unfused.
            using var scaled = g * 0.5;
            ep.mul_(1 - 1e-3 * 0.1);
            em.mul_(0.9).add_(scaled, alpha: 0.1);
            ev.mul_(0.95).addcmul_(scaled, scaled, value: 0.05);
            using var denominator = ev.sqrt().div_(update.Correction2).add_(1e-8);
            ep.addcdiv_(em, denominator, value: -1e-3 / update.Correction1);
        }

        FusedCpuUpdate.Run([new FusedSlot(p, g, null, m, v, null, true)], update);
        // Equal up to float32 rounding: a few units in the last place of each tensor's largest value.
        foreach (var (name, actual, expected) in new[] { ("p", p, ep), ("m", m, em), ("v", v, ev) })
        {
            (actual - expected).abs().max().item<float>().ShouldBeLessThanOrEqualTo(1e-6f * expected.abs().max().item<float>(), name);
        }

        (g - eg).abs().max().item<float>().ShouldBe(0f, "the pass only reads the gradient (AdamW.Step then releases it)");
    }

    [Fact]
    public void GradientNorm_IsTheNormClipGradNormComputes()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 6);
        using var optimizer = new AdamW(Named(model));
        Backward(model, 0);
        var ours = optimizer.GradientNorm();
        var torchs = nn.utils.clip_grad_norm_(model.parameters(), 1e30);
        ours.ShouldBe(torchs, torchs * 1e-6);
        ours.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void AStep_ReleasesTheGradients_SoTheNextBackwardStoresItsOwn_AndAnotherAddsToIt()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 7);
        using var optimizer = new AdamW(Named(model));
        Backward(model, 0);
        optimizer.Step(3e-3, 0.1);
        model.parameters().Where(p => p.grad is not null).ShouldBeEmpty("the step releases every gradient");

        // The same weights in a model that never had a gradient: its backward is the reference.
        using var fresh = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        using (var noGrad = no_grad())
        {
            foreach (var ((_, target), (_, source)) in fresh.named_parameters().Zip(model.named_parameters()))
            {
                target.copy_(source);
            }
        }

        Backward(model, 1);
        Backward(fresh, 1);
        var first = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        foreach (var ((name, a), (_, b)) in model.named_parameters().Zip(fresh.named_parameters()))
        {
            (a.grad! - b.grad!).abs().max().item<float>().ShouldBe(0f, $"{name}: nothing of the earlier step's gradient remains");
        }

        Backward(model, 1);
        foreach (var (name, p) in model.named_parameters())
        {
            using var expected = first[name] * 2;
            (p.grad! - expected).abs().max().item<float>().ShouldBeLessThanOrEqualTo(1e-6f * expected.abs().max().item<float>() + 1e-12f, $"{name}: a second backward (gradient accumulation) adds to the first");
        }
    }

    private static List<(string, Parameter)> Named(Gpt2Model model) => model.named_parameters().Select(p => (p.name, p.parameter)).ToList();

    private static void Backward(Gpt2Model model, int step)
    {
        var (input, target) = Batch.For(step);
        using var loss = model.Loss(input, target);
        loss.backward();
    }

    /// <summary>Fixed batches of Bible bytes.</summary>
    private sealed class ArrayTokenSourceBatch
    {
        private readonly long[] _tokens = new Serverless.Model.Tokenizers.ByteTokenizer().Encode(TrainingFixtures.DemoText("kjv.txt.gz", 8_000)).Select(t => (long)t).ToArray();

        public (Tensor Input, Tensor Target) For(int step)
        {
            var rows = Enumerable.Range(0, 4).Select(r => _tokens.Skip(step * 500 + r * 100).Take(33).ToArray()).ToArray();
            var all = tensor(rows.SelectMany(r => r).ToArray(), dtype: ScalarType.Int64).view(4, 33);
            return (all[.., ..32].contiguous(), all[.., 1..].contiguous());
        }
    }
}

using Serverless.Model.Gpt2;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Gpt2;

public class Gpt2ModelTests
{
    [Fact]
    public void Forward_TinyModel_ReturnsLogitsPerPosition()
    {
        using var model = TinyModels.Create();
        using var idx = randint(0, 257, [3, 10], dtype: ScalarType.Int64);
        using var logits = model.forward(idx);
        logits.shape.ShouldBe([3L, 10L, 257L]);
    }

    [Fact]
    public void Forward_IsCausal_EarlierLogitsIgnoreLaterTokens()
    {
        using var model = TinyModels.Create();
        using var a = tensor(new long[] { 1, 2, 3, 4, 5, 6 }).unsqueeze(0);
        using var b = tensor(new long[] { 1, 2, 3, 9, 9, 9 }).unsqueeze(0);
        using var la = model.forward(a);
        using var lb = model.forward(b);
        la[.., ..3].allclose(lb[.., ..3], rtol: 1e-5, atol: 1e-6).ShouldBeTrue();
        la[.., 3..].allclose(lb[.., 3..]).ShouldBeFalse();
    }

    [Fact]
    public void ParameterCount_Gpt2SmallShape_Matches124M()
    {
        using var model = new Gpt2Model(Gpt2Config.Gpt2Small);
        // The published count for Hugging Face's gpt2 (tied head counted once).
        model.ParameterCount().ShouldBe(124_439_808);
        model.ParameterCount(includePositionEmbedding: false).ShouldBe(124_439_808 - 1024 * 768);
    }

    [Fact]
    public void NamedParameters_UseHuggingFaceNames()
    {
        using var model = TinyModels.Create();
        var names = model.named_parameters().Select(p => p.name).ToList();
        names.ShouldContain("wte.weight");
        names.ShouldContain("wpe.weight");
        names.ShouldContain("h.0.ln_1.weight");
        names.ShouldContain("h.0.attn.c_attn.weight");
        names.ShouldContain("h.1.attn.c_proj.bias");
        names.ShouldContain("h.1.ln_2.bias");
        names.ShouldContain("h.1.mlp.c_fc.weight");
        names.ShouldContain("h.1.mlp.c_proj.weight");
        names.ShouldContain("ln_f.weight");
        names.ShouldNotContain("lm_head.weight");
    }

    [Fact]
    public void Constructor_SameSeed_SameWeights()
    {
        using var a = TinyModels.Create(seed: 7);
        using var b = TinyModels.Create(seed: 7);
        using var c = TinyModels.Create(seed: 8);
        var pa = a.parameters().ToList();
        var pb = b.parameters().ToList();
        pa.Zip(pb).All(p => p.First.equal(p.Second).all().item<bool>()).ShouldBeTrue();
        pa[0].equal(c.parameters().First()).all().item<bool>().ShouldBeFalse();
    }

    [Fact]
    public void EstimateMfu_FollowsNanoGptFormula()
    {
        using var model = TinyModels.Create();
        var n = model.ParameterCount(includePositionEmbedding: false);
        var flopsPerToken = 6.0 * n + 12.0 * 2 * 4 * 8 * 32;
        model.EstimateMfu(tokensPerSecond: 1000, sequenceLength: 32, peakFlops: 1e9).ShouldBe(flopsPerToken * 1000 / 1e9, 1e-12);
    }

    [Fact]
    public void ForwardWithCache_MatchesFullForward()
    {
        using var model = TinyModels.Create();
        using var idx = tensor(new long[] { 5, 17, 99, 3, 42, 7 }).unsqueeze(0);
        using var full = model.forward(idx);
        using var cache = model.NewCache();
        using var prefix = model.ForwardWithCache(idx[.., ..4], cache);
        using var rest = model.ForwardWithCache(idx[.., 4..], cache);   // two new positions over four cached
        cache.Length.ShouldBe(6);
        prefix.allclose(full[.., ..4], atol: 1e-5).ShouldBeTrue();
        rest.allclose(full[.., 4..], atol: 1e-5).ShouldBeTrue();
    }

    [Fact]
    public void Forward_LongerThanContext_FailsWithMessage()
    {
        using var model = TinyModels.Create();
        using var idx = zeros([1, 33], dtype: ScalarType.Int64);
        Should.Throw<ArgumentException>(() => model.forward(idx)).Message.ShouldContain("n_positions = 32");
    }
}

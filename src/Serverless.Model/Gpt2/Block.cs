using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>A pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
internal sealed class Block : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "ln_1")] private readonly LayerNorm _ln1;
    [ComponentName(Name = "attn")] private readonly CausalSelfAttention _attn;
    [ComponentName(Name = "ln_2")] private readonly LayerNorm _ln2;
    [ComponentName(Name = "mlp")] private readonly Mlp _mlp;

    public Block(Gpt2Config config) : base("block")
    {
        _ln1 = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        _attn = new CausalSelfAttention(config);
        _ln2 = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        _mlp = new Mlp(config);
        RegisterComponents();
    }

    public CausalSelfAttention Attention => _attn;

    public Mlp Mlp => _mlp;

    public override Tensor forward(Tensor x) => ForwardWithCache(x, null);

    public Tensor ForwardWithCache(Tensor x, LayerCache? cache)
    {
        using var n1 = _ln1.forward(x);
        using var a = _attn.ForwardWithCache(n1, cache);
        var x1 = Scalars.Add(x, a);                                                     // (B, T, C)
        using var n2 = _ln2.forward(x1);
        using var m = _mlp.forward(n2);
        using (x1)
        {
            return Scalars.Add(x1, m);
        }
    }
}

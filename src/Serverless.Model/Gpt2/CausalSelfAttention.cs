using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>Multi-head causal self-attention, GPT-2's <c>attn</c> (fused q/k/v projection <c>c_attn</c>, output <c>c_proj</c>).</summary>
internal sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "c_attn")] private readonly Projection _qkv;
    [ComponentName(Name = "c_proj")] private readonly Projection _proj;
    private readonly int _heads;
    private readonly int _width;

    public CausalSelfAttention(Gpt2Config config) : base("attn")
    {
        _heads = config.NHead;
        _width = config.NEmbd;
        _qkv = new Projection(_width, 3 * _width);
        _proj = new Projection(_width, _width);
        RegisterComponents();
    }

    public Projection Qkv => _qkv;

    public Projection Proj => _proj;

    public override Tensor forward(Tensor x) => ForwardWithCache(x, null);

    /// <summary>Attends over the cached positions (if any) plus the new ones, and appends the new keys and values to the cache.</summary>
    public Tensor ForwardWithCache(Tensor x, LayerCache? cache)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var headSize = _width / _heads;
        var qkv = _qkv.forward(x).split(_width, dim: 2);                              // 3 × (B, T, C)
        var q = qkv[0].view(b, t, _heads, headSize).transpose(1, 2);                  // (B, nh, T, hs)
        var k = qkv[1].view(b, t, _heads, headSize).transpose(1, 2);                  // (B, nh, T, hs)
        var v = qkv[2].view(b, t, _heads, headSize).transpose(1, 2);                  // (B, nh, T, hs)

        var past = 0L;
        if (cache is not null)
        {
            past = cache.Length;
            (k, v) = cache.Append(k, v);                                              // (B, nh, past + T, hs)
        }

        Tensor y;
        if (past == 0)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: t > 1); // (B, nh, T, hs)
        }
        else if (t == 1)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v);                   // the newest position sees everything
        }
        else
        {
            // New position i (absolute past + i) may see keys 0 .. past + i.
            using var rows = arange(past, past + t, device: q.device).unsqueeze(1);
            using var cols = arange(past + t, device: q.device).unsqueeze(0);
            using var mask = cols <= rows;                                              // (T, past + T)
            y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        }

        y = y.transpose(1, 2).contiguous().view(b, t, _width);                         // (B, T, C)
        return _proj.forward(y);
    }
}

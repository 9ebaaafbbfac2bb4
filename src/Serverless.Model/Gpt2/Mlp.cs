using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>GPT-2's feed-forward block <c>mlp</c>: <c>c_fc</c>, GELU, <c>c_proj</c>.</summary>
internal sealed class Mlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "c_fc")] private readonly Projection _fc;
    [ComponentName(Name = "c_proj")] private readonly Projection _proj;
    private readonly bool _tanhGelu;

    public Mlp(Gpt2Config config) : base("mlp")
    {
        _fc = new Projection(config.NEmbd, config.InnerSize);
        _proj = new Projection(config.InnerSize, config.NEmbd);
        _tanhGelu = config.ActivationFunction is "gelu_new" or "gelu_pytorch_tanh";
        RegisterComponents();
    }

    public Projection Fc => _fc;

    public Projection Proj => _proj;

    public override Tensor forward(Tensor x)
    {
        using var h = _fc.forward(x);                                                   // (B, T, 4C)
        using var a = _tanhGelu
            ? nn.functional.gelu(h, GELU.Approximate.tanh)
            : nn.functional.gelu(h);
        return _proj.forward(a);                                                        // (B, T, C)
    }
}

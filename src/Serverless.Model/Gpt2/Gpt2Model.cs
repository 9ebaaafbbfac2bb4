using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>
/// A GPT-2 language model: token and learned position embeddings, <c>n_layer</c> pre-LayerNorm blocks, a final
/// LayerNorm and an output head tied to the token embedding. Parameter names are Hugging Face's
/// (<c>wte</c>, <c>h.0.attn.c_attn</c>, <c>ln_f</c>) so state dicts map one to one.
/// </summary>
public sealed class Gpt2Model : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "wte")] private readonly Embedding _wte;
    [ComponentName(Name = "wpe")] private readonly Embedding _wpe;
    [ComponentName(Name = "h")] private readonly ModuleList<Block> _blocks;
    [ComponentName(Name = "ln_f")] private readonly LayerNorm _lnF;

    /// <summary>Builds a model with GPT-2's initialization (normal 0.02, residual projections scaled by 1/√(2·n_layer)).</summary>
    /// <param name="config">The model's shape; validated here.</param>
    /// <param name="seed">Seeds the initialization, so the same seed gives the same weights.</param>
    public Gpt2Model(Gpt2Config config, long? seed = null) : base("gpt2")
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        _wte = nn.Embedding(config.VocabSize, config.NEmbd);
        _wpe = nn.Embedding(config.NPositions, config.NEmbd);
        _blocks = new ModuleList<Block>(Enumerable.Range(0, config.NLayer).Select(_ => new Block(config)).ToArray());
        _lnF = nn.LayerNorm(config.NEmbd, config.LayerNormEpsilon);
        RegisterComponents();
        Initialize(seed);
    }

    /// <summary>The model's shape.</summary>
    public Gpt2Config Config { get; internal set; }

    /// <summary>Where the weights live (CPU, or a CUDA device after <c>to(cuda)</c>); inputs are moved here.</summary>
    public Device Device => _wte.weight!.device;

    /// <summary><paramref name="tensor"/> itself when it is already on this model's device, else a copy there.</summary>
    internal Tensor OnDevice(Tensor tensor) => tensor.device_type == Device.type && tensor.device_index == Device.index ? tensor : tensor.to(Device);

    /// <summary>
    /// Mixed precision: when set (to <see cref="ScalarType.BFloat16"/>), every projection and the output head multiply
    /// in that dtype while weights, LayerNorms, softmax and the optimizer stay float32. Null (the default) computes
    /// everything in float32.
    /// </summary>
    public ScalarType? ComputeType
    {
        get => _computeType;
        set
        {
            _computeType = value;
            foreach (var (_, projection) in Projections())
            {
                projection.ComputeType = value;
            }
        }
    }

    private ScalarType? _computeType;

    /// <summary>The token embedding in <see cref="ComputeType"/> for the tied output head (see <see cref="WeightCopies"/>).</summary>
    internal Tensor? HeadWeightCopy { get; set; }

    internal Embedding TokenEmbedding => _wte;

    internal ModuleList<Block> Blocks => _blocks;

    /// <summary>Logits for every position: (B, T) token ids → (B, T, vocab).</summary>
    public override Tensor forward(Tensor idx) => ForwardWithCache(idx, null);

    /// <summary>
    /// Logits for the new positions <paramref name="idx"/>, attending over what <paramref name="cache"/> already
    /// holds; the new keys and values are appended to it.
    /// </summary>
    public Tensor ForwardWithCache(Tensor idx, KvCache? cache)
    {
        ArgumentNullException.ThrowIfNull(idx);
        var t = idx.shape[1];
        var past = cache?.Length ?? 0;
        var moved = OnDevice(idx);
        using var onDevice = ReferenceEquals(moved, idx) ? null : moved;
        idx = moved;
        if (past + t > Config.NPositions)
        {
            throw new ArgumentException(
                $"Sequence of {past + t} positions is longer than the model's context (n_positions = {Config.NPositions}).", nameof(idx));
        }

        using Scalar first = past, end = past + t;                                               // kept alive for the call (Scalars)
        using var pos = arange(first, end, dtype: ScalarType.Int64, device: idx.device);       // (T)
        using var tok = _wte.forward(idx);                                                        // (B, T, C)
        using var pe = _wpe.forward(pos);                                                         // (T, C)
        var x = Scalars.Add(tok, pe);                                                             // (B, T, C)
        for (var i = 0; i < _blocks.Count; i++)
        {
            using var previous = x;
            x = _blocks[i].ForwardWithCache(previous, cache?.Layers[i]);
        }

        using (x)
        {
            using var normed = _lnF.forward(x);
            return ComputeType is { } dtype
                ? Projection.MixedLinear(normed, _wte.weight!, HeadWeightCopy, null, dtype)
                : nn.functional.linear(normed, _wte.weight!);                                   // (B, T, vocab)
        }
    }

    /// <summary>Mean cross-entropy (nats) of predicting <paramref name="targets"/> from <paramref name="idx"/>, both (B, T).</summary>
    public Tensor Loss(Tensor idx, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var logits = forward(idx);
        using var flat = logits.view(-1, logits.shape[2]);
        using var flatTargets = OnDevice(targets.reshape(-1));
        return nn.functional.cross_entropy(flat, flatTargets);
    }

    /// <summary>Loads a model directory (<c>config.json</c> + <c>model.safetensors</c>), as Hugging Face's <c>from_pretrained</c> does.</summary>
    public static Gpt2Model FromPretrained(string directory) => ModelDirectory.Load(directory);

    /// <summary>Saves this model as a Hugging Face GPT-2 model directory.</summary>
    public void SavePretrained(string directory) => ModelDirectory.Save(this, directory);

    /// <summary>The four projections of every block, by their state-dict prefix (<c>h.0.attn.c_attn</c>…).</summary>
    internal IEnumerable<(string Name, Projection Projection)> Projections() =>
        _blocks.SelectMany((block, i) => new[]
        {
            ($"h.{i}.attn.c_attn", block.Attention.Qkv),
            ($"h.{i}.attn.c_proj", block.Attention.Proj),
            ($"h.{i}.mlp.c_fc", block.Mlp.Fc),
            ($"h.{i}.mlp.c_proj", block.Mlp.Proj),
        });

    /// <summary>Adds low-rank adapters to every attention and MLP projection (see <see cref="Projection.AddAdapter"/>).</summary>
    public void AddAdapters(int rank, double alpha, double dropout, long seed)
    {
        using var generator = new Generator((ulong)seed);
        foreach (var (_, projection) in Projections())
        {
            projection.AddAdapter(rank, alpha, dropout, generator);
        }
    }

    /// <summary>Whether low-rank adapters are attached.</summary>
    public bool HasAdapters => Projections().Any(p => p.Projection.HasAdapter);

    /// <summary>
    /// The weights as a plain GPT-2 state dict in our [out, in] layout, adapters merged in; new tensors the caller disposes.
    /// </summary>
    public List<(string Name, Tensor Tensor)> MergedStateDict()
    {
        using var noGrad = torch.no_grad();
        var merged = Projections().ToDictionary(p => p.Name + ".weight", p => p.Projection);
        return named_parameters()
            .Where(p => !p.name.Contains(".lora_", StringComparison.Ordinal))
            .Select(p => (p.name, merged.TryGetValue(p.name, out var projection) ? projection.MergedWeight() : p.parameter.detach().clone()))
            .ToList();
    }

    /// <summary>A new, empty key/value cache for this model.</summary>
    public KvCache NewCache() => new(Config.NLayer);

    /// <summary>Number of parameters (the tied output head counted once).</summary>
    public long ParameterCount(bool includePositionEmbedding = true)
    {
        var total = parameters().Sum(p => p.numel());
        return includePositionEmbedding ? total : total - _wpe.weight!.numel();
    }

    /// <summary>
    /// nanoGPT's model-FLOPs utilization: (6·N + 12·L·H·Q·T) FLOPs per token for a forward and backward pass over
    /// a context of <paramref name="sequenceLength"/> (N = parameters without the position embedding), divided by
    /// <paramref name="peakFlops"/>.
    /// </summary>
    /// <param name="tokensPerSecond">Training throughput measured.</param>
    /// <param name="sequenceLength">T, the training context length.</param>
    /// <param name="peakFlops">The hardware's rate to compare with, in FLOP/s (for example a measured matmul rate).</param>
    public double EstimateMfu(double tokensPerSecond, int sequenceLength, double peakFlops)
    {
        var n = (double)ParameterCount(includePositionEmbedding: false);
        var (l, h, q) = (Config.NLayer, Config.NHead, Config.NEmbd / Config.NHead);
        var flopsPerToken = 6 * n + 12.0 * l * h * q * sequenceLength;
        return flopsPerToken * tokensPerSecond / peakFlops;
    }

    private void Initialize(long? seed)
    {
        using var noGrad = torch.no_grad();
        var generator = seed is { } s ? new Generator((ulong)s) : null;
        try
        {
            var residualStd = 0.02 / Math.Sqrt(2.0 * Config.NLayer);
            foreach (var (name, p) in named_parameters())
            {
                if (name.EndsWith(".bias", StringComparison.Ordinal))
                {
                    p.zero_();
                }
                else if (name.StartsWith("ln_", StringComparison.Ordinal) || name.Contains(".ln_", StringComparison.Ordinal))
                {
                    p.fill_(1.0);
                }
                else
                {
                    var std = name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? residualStd : 0.02;
                    p.normal_(0, std, generator);
                }
            }
        }
        finally
        {
            generator?.Dispose();
        }
    }
}

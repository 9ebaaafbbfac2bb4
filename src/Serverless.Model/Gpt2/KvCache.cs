using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>
/// Keys and values of the positions already seen, one <see cref="LayerCache"/> per block, so generating a token
/// costs one position of compute. The cache owns its tensors (outside any dispose scope) until disposed.
/// </summary>
public sealed class KvCache : IDisposable
{
    internal KvCache(int layers)
    {
        Layers = Enumerable.Range(0, layers).Select(_ => new LayerCache()).ToArray();
    }

    internal LayerCache[] Layers { get; }

    /// <summary>Number of positions cached.</summary>
    public long Length => Layers[0].Length;

    /// <summary>Releases the cached tensors.</summary>
    public void Dispose()
    {
        foreach (var layer in Layers)
        {
            layer.Dispose();
        }
    }
}

/// <summary>One block's cached keys and values, each (B, nh, T, hs).</summary>
internal sealed class LayerCache : IDisposable
{
    private Tensor? _keys;
    private Tensor? _values;

    public long Length => _keys?.shape[2] ?? 0;

    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
    {
        var keys = _keys is null ? k.alias() : cat([_keys, k], 2);
        var values = _values is null ? v.alias() : cat([_values, v], 2);
        _keys?.Dispose();
        _values?.Dispose();
        _keys = keys.detach().DetachFromDisposeScope();
        _values = values.detach().DetachFromDisposeScope();
        return (keys, values);
    }

    public void Dispose()
    {
        _keys?.Dispose();
        _values?.Dispose();
        _keys = _values = null;
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>
/// Scalars that the training step's hot calls pass to libtorch, kept alive for as long as the call needs them.
/// TorchSharp turns a number into a temporary <see cref="Scalar"/> whose native handle goes to the call while nothing
/// keeps the object reachable (<c>a + b</c> is <c>a.add(b, 1)</c>); its finalizer frees the handle, so a garbage
/// collection that another thread starts during the call can free it before libtorch reads it. A static scalar is
/// never collected; one made for a call is disposed (and so kept alive) after it.
/// </summary>
internal static class Scalars
{
    /// <summary>1, the <c>alpha</c> of a plain addition.</summary>
    public static Scalar One { get; } = 1.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/> (a residual connection), without a temporary scalar.</summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, One);
}

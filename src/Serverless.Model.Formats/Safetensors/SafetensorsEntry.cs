namespace Serverless.Model.Safetensors;

/// <summary>One tensor as a safetensors header describes it; offsets are relative to the start of the data section.</summary>
/// <param name="Name">The tensor's name.</param>
/// <param name="DType">The safetensors dtype string (<c>F32</c>, <c>F16</c>, <c>BF16</c>…).</param>
/// <param name="Shape">Dimensions, outermost first.</param>
/// <param name="Begin">First byte, relative to the data section.</param>
/// <param name="End">One past the last byte.</param>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape as <c>[a, b]</c>.</summary>
    public string ShapeText => SafetensorsHeader.FormatShape(Shape);
}

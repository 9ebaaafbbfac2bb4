namespace Serverless.Model.Evaluation;

/// <summary>How well a model predicts a token stream.</summary>
/// <param name="Loss">Mean cross-entropy per predicted token, in nats.</param>
/// <param name="Tokens">Number of tokens predicted.</param>
/// <param name="Bytes">UTF-8 bytes of the text, when known (for bits per byte).</param>
public sealed record EvaluationResult(double Loss, long Tokens, long? Bytes = null)
{
    /// <summary>exp(loss).</summary>
    public double Perplexity => Math.Exp(Loss);

    /// <summary>Total nats over total bytes, in bits: comparable across tokenizers. Null when the byte count is unknown.</summary>
    public double? BitsPerByte => Bytes is > 0 ? Loss * Tokens / (Math.Log(2) * Bytes.Value) : null;
}

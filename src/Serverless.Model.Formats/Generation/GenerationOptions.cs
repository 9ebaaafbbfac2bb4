namespace Serverless.Model.Generation;

/// <summary>How to sample a continuation.</summary>
public sealed record GenerationOptions
{
    /// <summary>The most tokens to generate. <value>100</value>.</summary>
    public int MaxNewTokens { get; init; } = 100;

    /// <summary>Softmax temperature; 0 means greedy (always the most likely token). <value>0.8</value>.</summary>
    public double Temperature { get; init; } = 0.8;

    /// <summary>Sample only among the K most likely tokens; null for no limit.</summary>
    public int? TopK { get; init; }

    /// <summary>Sample only among the most likely tokens whose probabilities add up to P (nucleus); null for no limit.</summary>
    public double? TopP { get; init; }

    /// <summary>Seeds sampling, so the same seed gives the same text. <value>1337</value>.</summary>
    public long Seed { get; init; } = 1337;

    /// <summary>Reuse keys and values of earlier positions (one position of compute per token). <value>true</value>.</summary>
    public bool UseCache { get; init; } = true;

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> naming the option.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0)
        {
            throw new ArgumentException($"max-new-tokens is {MaxNewTokens}; it must be 0 or more.");
        }

        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
        {
            throw new ArgumentException($"temperature is {Temperature}; it must be 0 (greedy) or more.");
        }

        if (TopK is < 1)
        {
            throw new ArgumentException($"top-k is {TopK}; it must be 1 or more.");
        }

        if (TopP is { } p && !(p > 0 && p <= 1))
        {
            throw new ArgumentException($"top-p is {TopP}; it must be in (0, 1].");
        }
    }
}

namespace Serverless.Model.Tokenizers;

/// <summary>Finds a tokenizer by the name a model's <c>config.json</c> records.</summary>
public static class TokenizerRegistry
{
    /// <summary>The names accepted.</summary>
    public static IReadOnlyList<string> Names { get; } = [Gpt2BpeTokenizer.TokenizerName, ByteTokenizer.TokenizerName];

    /// <summary>The tokenizer called <paramref name="name"/>; throws <see cref="ModelFormatException"/> for an unknown name.</summary>
    public static ITextTokenizer Get(string name) => name switch
    {
        Gpt2BpeTokenizer.TokenizerName => new Gpt2BpeTokenizer(),
        ByteTokenizer.TokenizerName => new ByteTokenizer(),
        _ => throw new ModelFormatException($"Unknown tokenizer '{name}'; known: {string.Join(", ", Names)}."),
    };
}

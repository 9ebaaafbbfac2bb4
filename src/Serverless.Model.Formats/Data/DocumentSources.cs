using Serverless.Model.Gpt2;
using Serverless.Model.Media;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Data;

/// <summary>Picks the document source a model's data is read with.</summary>
public static class DocumentSources
{
    /// <summary>
    /// The source for a model with <paramref name="config"/>: text through its tokenizer, images and audio through its
    /// media settings, with class folders under <paramref name="root"/> (null: no classes).
    /// </summary>
    public static IDocumentSource For(Gpt2Config config, string? root = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Media is { } media
            ? new MediaDocumentSource(media, root)
            : new TextDocumentSource(new DatasetReader(), TokenizerRegistry.Get(config.TokenizerName));
    }

    /// <summary>The preparer for a model with <paramref name="config"/>.</summary>
    public static DatasetPreparer Preparer(Gpt2Config config, DocumentSplit split, string? root = null) => new(For(config, root), split);
}

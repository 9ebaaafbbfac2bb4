using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Serverless.Model.Media;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Gpt2;

/// <summary>
/// The shape of a GPT-2 model, field for field as Hugging Face writes <c>config.json</c>.
/// A hub <c>config.json</c> loads as is; our own additions live under keys Hugging Face ignores.
/// </summary>
public sealed record Gpt2Config
{
    /// <summary>Vocabulary size. <value>50257</value> (GPT-2 BPE).</summary>
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 50257;

    /// <summary>Context length: the most positions the model can attend over. <value>1024</value>.</summary>
    [JsonPropertyName("n_positions")] public int NPositions { get; init; } = 1024;

    /// <summary>Embedding width. <value>768</value>.</summary>
    [JsonPropertyName("n_embd")] public int NEmbd { get; init; } = 768;

    /// <summary>Number of transformer blocks. <value>12</value>.</summary>
    [JsonPropertyName("n_layer")] public int NLayer { get; init; } = 12;

    /// <summary>Number of attention heads. <value>12</value>.</summary>
    [JsonPropertyName("n_head")] public int NHead { get; init; } = 12;

    /// <summary>Width of the MLP's hidden layer; null means 4 × <see cref="NEmbd"/>.</summary>
    [JsonPropertyName("n_inner")] public int? NInner { get; init; }

    /// <summary>LayerNorm epsilon. <value>1e-5</value>.</summary>
    [JsonPropertyName("layer_norm_epsilon")] public double LayerNormEpsilon { get; init; } = 1e-5;

    /// <summary>MLP activation: <c>gelu_new</c> (tanh approximation, GPT-2's), <c>gelu_pytorch_tanh</c> (the same), or <c>gelu</c> (exact). <value>gelu_new</value>.</summary>
    [JsonPropertyName("activation_function")] public string ActivationFunction { get; init; } = "gelu_new";

    /// <summary>Beginning-of-text token id. <value>50256</value>.</summary>
    [JsonPropertyName("bos_token_id")] public int BosTokenId { get; init; } = 50256;

    /// <summary>End-of-text token id; generation stops on it. <value>50256</value>.</summary>
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 50256;

    /// <summary>
    /// Our field: which tokenizer the model reads (<c>gpt2</c> or <c>bytes</c>). Absent in hub configs, where
    /// <c>vocab_size</c> 50257 means GPT-2 BPE and 257 means bytes.
    /// </summary>
    [JsonPropertyName("serverless_tokenizer")] public string? Tokenizer { get; init; }

    /// <summary>
    /// Our field, for image and audio models: how their data becomes tokens (modality, image size, channels, levels,
    /// sample rate, classes). Null for text models.
    /// </summary>
    [JsonPropertyName("serverless_media")] public MediaSettings? Media { get; init; }

    /// <summary>The modality the model reads: <c>text</c>, <c>image</c> or <c>audio</c>.</summary>
    [JsonIgnore] public string Modality => Media?.Modality ?? Serverless.Model.Media.Modality.Text;

    /// <summary>The MLP hidden width actually used.</summary>
    [JsonIgnore] public int InnerSize => NInner ?? 4 * NEmbd;

    /// <summary>The tokenizer name, inferred from <see cref="VocabSize"/> when the config does not say.</summary>
    [JsonIgnore]
    public string TokenizerName => Media?.Modality ?? Tokenizer ?? VocabSize switch
    {
        Gpt2BpeTokenizer.VocabularySize => Gpt2BpeTokenizer.TokenizerName,
        ByteTokenizer.VocabularySize => ByteTokenizer.TokenizerName,
        _ => throw new ModelFormatException(
            $"config.json does not name a tokenizer (serverless_tokenizer) and vocab_size {VocabSize} matches none we know (50257 = gpt2, 257 = bytes)."),
    };

    /// <summary>The GPT-2 124M shape (the Hugging Face <c>gpt2</c> checkpoint).</summary>
    public static Gpt2Config Gpt2Small { get; } = new() { Tokenizer = Gpt2BpeTokenizer.TokenizerName };

    private static readonly JsonSerializerOptions ReadOptions = new()
    {
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Checks that the numbers describe a buildable model; throws <see cref="ModelFormatException"/> naming the field.</summary>
    public void Validate(string source = "config.json")
    {
        static void Positive(string source, string field, long value, long max)
        {
            if (value <= 0 || value > max)
            {
                throw new ModelFormatException($"{source}: {field} is {value}; it must be between 1 and {max}.");
            }
        }

        Positive(source, "vocab_size", VocabSize, 1 << 20);
        Positive(source, "n_positions", NPositions, 1 << 16);
        Positive(source, "n_embd", NEmbd, 1 << 16);
        Positive(source, "n_layer", NLayer, 1024);
        Positive(source, "n_head", NHead, 1024);
        Positive(source, "n_inner", InnerSize, 1 << 18);
        if (NEmbd % NHead != 0)
        {
            throw new ModelFormatException($"{source}: n_embd ({NEmbd}) must be a multiple of n_head ({NHead}).");
        }

        if (!(LayerNormEpsilon > 0 && LayerNormEpsilon < 1))
        {
            throw new ModelFormatException($"{source}: layer_norm_epsilon is {LayerNormEpsilon}; it must be between 0 and 1.");
        }

        if (ActivationFunction is not ("gelu_new" or "gelu_pytorch_tanh" or "gelu"))
        {
            throw new ModelFormatException(
                $"{source}: activation_function '{ActivationFunction}' is not supported; use gelu_new, gelu_pytorch_tanh or gelu.");
        }

        // bos/eos ids outside the vocabulary are accepted, as transformers accepts them (GPT2Config(vocab_size=1000)
        // keeps 50256, as every tiny test model on the hub does): such an id is simply never produced, so generation
        // never stops on it and evaluation never scores it.
        if (Media is not null)
        {
            Media.Validate($"{source}: serverless_media");
            if (Tokenizer is not null && Tokenizer != Media.Modality)
            {
                throw new ModelFormatException($"{source}: serverless_tokenizer '{Tokenizer}' disagrees with serverless_media's modality '{Media.Modality}'.");
            }

            if (BosTokenId != Media.StartToken || EosTokenId != Media.StartToken)
            {
                throw new ModelFormatException($"{source}: bos_token_id and eos_token_id must be the start token, {Media.StartToken} (levels), for a {Media.Modality} model; they are {BosTokenId} and {EosTokenId}.");
            }

            if (VocabSize != Media.VocabSize)
            {
                throw new ModelFormatException($"{source}: vocab_size is {VocabSize}, but {Media.Levels} levels + start + {MediaSettings.MaxClasses} class tokens make {Media.VocabSize}.");
            }

            if (Media.Modality == Serverless.Model.Media.Modality.Image && NPositions < Media.ValuesPerImage + 2)
            {
                throw new ModelFormatException($"{source}: n_positions is {NPositions}; a {Media.ImageSize}×{Media.ImageSize}×{Media.Channels} image needs {Media.ValuesPerImage + 2} (start, class and every sub-pixel).");
            }
        }
        else if (Tokenizer is not null && Tokenizer is not (Gpt2BpeTokenizer.TokenizerName or ByteTokenizer.TokenizerName))
        {
            throw new ModelFormatException($"{source}: serverless_tokenizer '{Tokenizer}' is unknown; use gpt2 or bytes (or image/audio with serverless_media).");
        }

        _ = TokenizerName;
    }

    /// <summary>Reads and validates a <c>config.json</c>; unknown fields are ignored, as Hugging Face does.</summary>
    public static Gpt2Config Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException($"{path} does not exist: a model directory needs config.json and model.safetensors.");
        }

        Gpt2Config? config;
        try
        {
            config = JsonSerializer.Deserialize<Gpt2Config>(File.ReadAllText(path), ReadOptions);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path} is not valid JSON: {e.Message}");
        }

        if (config is null)
        {
            throw new ModelFormatException($"{path} holds null, not a configuration object.");
        }

        config.Validate(path);
        return config;
    }

    /// <summary>
    /// Writes <c>config.json</c> as <c>GPT2LMHeadModel.from_pretrained</c> expects it, plus our fields.
    /// </summary>
    public void Save(string path)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["model_type"] = "gpt2",
            ["vocab_size"] = VocabSize,
            ["n_positions"] = NPositions,
            ["n_ctx"] = NPositions,
            ["n_embd"] = NEmbd,
            ["n_layer"] = NLayer,
            ["n_head"] = NHead,
            ["n_inner"] = NInner,
            ["layer_norm_epsilon"] = LayerNormEpsilon,
            ["activation_function"] = ActivationFunction,
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenId,
            ["resid_pdrop"] = 0.0,
            ["embd_pdrop"] = 0.0,
            ["attn_pdrop"] = 0.0,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = "float32",
            ["serverless_tokenizer"] = TokenizerName,
        };
        if (Media is not null)
        {
            json["serverless_media"] = JsonSerializer.SerializeToNode(Media);
        }

        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}

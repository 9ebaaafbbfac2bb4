using System.Globalization;
using System.Text.Json.Serialization;

namespace Serverless.Model.Media;

/// <summary>The three kinds of data a model reads, named as <c>config.json</c>, the spec and the CLI spell them.</summary>
public static class Modality
{
    /// <summary>UTF-8 text (.txt, .jsonl).</summary>
    public const string Text = "text";

    /// <summary>Images (.png, .jpg, .jpeg).</summary>
    public const string Image = "image";

    /// <summary>Audio (.wav).</summary>
    public const string Audio = "audio";

    /// <summary>All three.</summary>
    public static IReadOnlyList<string> All { get; } = [Text, Image, Audio];

    /// <summary>The modality of a file by its extension, or null for one no modality reads.</summary>
    public static string? OfFile(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".txt" or ".jsonl" => Text,
        ".png" or ".jpg" or ".jpeg" => Image,
        ".wav" => Audio,
        _ => null,
    };

    /// <summary>
    /// The one modality of <paramref name="files"/>; throws <see cref="ArgumentException"/> naming a file of each kind when
    /// they mix, or the files no modality reads.
    /// </summary>
    public static string Infer(IReadOnlyList<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        var unknown = files.Where(f => OfFile(f) is null).Take(3).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"{string.Join(", ", unknown.Select(Path.GetFileName))}: not a dataset file; use .txt or .jsonl (text), .png, .jpg or .jpeg (images), or .wav (audio).");
        }

        var kinds = files.GroupBy(f => OfFile(f)!).ToList();
        return kinds.Count switch
        {
            0 => throw new ArgumentException("No dataset files were given."),
            1 => kinds[0].Key,
            _ => throw new ArgumentException("The files mix modalities; a dataset is all text, all images or all audio: " +
                string.Join(", ", kinds.Select(k => $"{Path.GetFileName(k.First())} is {k.Key}")) + "."),
        };
    }
}

/// <summary>
/// How an image or audio model turns its data into tokens, recorded in <c>config.json</c> as <c>serverless_media</c>
/// (Hugging Face ignores the key; the weights stay GPT-2's). The vocabulary is the quantized values
/// (<c>0 … levels − 1</c>), then a start token (<c>levels</c>, which also separates documents and is the model's
/// <c>bos</c>/<c>eos</c>), then <see cref="MaxClasses"/> class tokens, of which the first <see cref="Classes"/>.Count are named.
/// </summary>
public sealed record MediaSettings
{
    /// <summary>Class tokens reserved in every media vocabulary, so a fine-tuning dataset can bring classes its base never saw.</summary>
    public const int MaxClasses = 64;

    /// <summary>Default image side in pixels.</summary>
    public const int DefaultImageSize = 16;

    /// <summary>Default quantization levels of an image sub-pixel.</summary>
    public const int DefaultImageLevels = 16;

    /// <summary>Default audio sample rate (Hz).</summary>
    public const int DefaultSampleRate = 8000;

    /// <summary>μ-law levels: audio is always 8-bit μ-law.</summary>
    public const int AudioLevels = 256;

    /// <summary><c>image</c> or <c>audio</c>.</summary>
    [JsonPropertyName("modality")] public string Modality { get; init; } = Media.Modality.Image;

    /// <summary>Image side: images are resized (aspect kept, padded with black) to this square.</summary>
    [JsonPropertyName("image_size")] public int? ImageSize { get; init; }

    /// <summary>Image channels: 1 grayscale, 3 RGB.</summary>
    [JsonPropertyName("channels")] public int? Channels { get; init; }

    /// <summary>Quantization levels per value: an image sub-pixel 0–255 becomes <c>v · levels / 256</c>; audio is μ-law 256.</summary>
    [JsonPropertyName("levels")] public int Levels { get; init; } = DefaultImageLevels;

    /// <summary>Audio sample rate (Hz) every file is resampled to.</summary>
    [JsonPropertyName("sample_rate")] public int? SampleRate { get; init; }

    /// <summary>Audio: longer files are cut into documents of at most this many seconds.</summary>
    [JsonPropertyName("clip_seconds")] public double? ClipSeconds { get; init; }

    /// <summary>Names of the class tokens, in id order (class folders of the data the model was trained on).</summary>
    [JsonPropertyName("classes")]
    public IReadOnlyList<string> Classes { get => _classes; init => _classes = value ?? []; }

    private readonly IReadOnlyList<string> _classes = [];

    /// <summary>The most values (sub-pixels) in one image: its context (values + start + class) must stay trainable.</summary>
    public const int MaxValuesPerImage = 4096;

    /// <summary>Vocabulary size: values, start, class tokens.</summary>
    [JsonIgnore] public int VocabSize => Levels + 1 + MaxClasses;

    /// <summary>The start token (document separator, bos, eos).</summary>
    [JsonIgnore] public int StartToken => Levels;

    /// <summary>Values in one image (side² × channels); 0 for audio.</summary>
    [JsonIgnore] public int ValuesPerImage => Modality == Media.Modality.Image ? ImageSize!.Value * ImageSize.Value * Channels!.Value : 0;

    /// <summary>Samples in one audio document at most.</summary>
    [JsonIgnore] public int SamplesPerClip => Modality == Media.Modality.Audio ? (int)Math.Round(SampleRate!.Value * ClipSeconds!.Value) : 0;

    /// <summary>The metric name for this modality's bits: <c>bits_per_dim</c> or <c>bits_per_sample</c>.</summary>
    [JsonIgnore] public string BitsName => Modality == Media.Modality.Image ? "bits/dim" : "bits/sample";

    /// <summary>The token of class <paramref name="index"/>.</summary>
    public int ClassToken(int index) => Levels + 1 + index;

    /// <summary>The settings for a new image model, defaults filled in.</summary>
    public static MediaSettings ForImages(int? imageSize = null, int? channels = null, int? levels = null) => new MediaSettings
    {
        Modality = Media.Modality.Image,
        ImageSize = imageSize ?? DefaultImageSize,
        Channels = channels ?? 1,
        Levels = levels ?? DefaultImageLevels,
    }.Validate();

    /// <summary>The settings for a new audio model, defaults filled in.</summary>
    public static MediaSettings ForAudio(int? sampleRate = null, double? clipSeconds = null) => new MediaSettings
    {
        Modality = Media.Modality.Audio,
        SampleRate = sampleRate ?? DefaultSampleRate,
        ClipSeconds = clipSeconds ?? 2,
        Levels = AudioLevels,
    }.Validate();

    /// <summary>Checks every field; throws <see cref="ModelFormatException"/> naming the first bad one.</summary>
    public MediaSettings Validate(string source = "config.json serverless_media")
    {
        var problems = Problems().ToList();
        return problems.Count == 0 ? this : throw new ModelFormatException($"{source}: {problems[0]}");
    }

    /// <summary>Every problem with the fields.</summary>
    public IEnumerable<string> Problems()
    {
        if (Modality == Media.Modality.Image)
        {
            if (ImageSize is not (>= 4 and <= 256))
            {
                yield return $"image_size is {ImageSize?.ToString(CultureInfo.InvariantCulture) ?? "missing"}; it must be between 4 and 256.";
            }

            if (Channels is not (1 or 3))
            {
                yield return $"channels is {Channels?.ToString(CultureInfo.InvariantCulture) ?? "missing"}; use 1 (grayscale) or 3 (RGB).";
            }

            if (Levels is < 2 or > 256)
            {
                yield return $"levels is {Levels}; it must be between 2 and 256.";
            }

            if (ImageSize is { } side && Channels is { } channels && side * side * channels > MaxValuesPerImage)
            {
                yield return $"image_size {side} with {channels} channel(s) makes {side * side * channels:N0} tokens an image; at most {MaxValuesPerImage:N0} (for example 64 × 64 grayscale or 36 × 36 RGB).";
            }
        }
        else if (Modality == Media.Modality.Audio)
        {
            if (SampleRate is not (>= 1000 and <= 48000))
            {
                yield return $"sample_rate is {SampleRate?.ToString(CultureInfo.InvariantCulture) ?? "missing"}; it must be between 1000 and 48000 Hz.";
            }

            if (ClipSeconds is not (>= 0.05 and <= 60))
            {
                yield return $"clip_seconds is {ClipSeconds?.ToString(CultureInfo.InvariantCulture) ?? "missing"}; it must be between 0.05 and 60.";
            }

            if (Levels != AudioLevels)
            {
                yield return $"levels is {Levels}; audio is 8-bit μ-law, so it must be {AudioLevels}.";
            }
        }
        else
        {
            yield return $"modality '{Modality}' is not image or audio.";
        }

        if (Classes.Count > MaxClasses)
        {
            yield return $"{Classes.Count} classes; at most {MaxClasses}.";
        }

        if (Classes.Distinct(StringComparer.Ordinal).Count() != Classes.Count)
        {
            yield return "classes has a name twice.";
        }
    }

    /// <summary>
    /// The class list after adding <paramref name="names"/>: known names keep their token, new ones take the next free
    /// tokens in name order. Throws <see cref="ArgumentException"/> when they do not fit.
    /// </summary>
    public IReadOnlyList<string> WithClasses(IEnumerable<string> names)
    {
        var all = Classes.ToList();
        all.AddRange(names.Distinct(StringComparer.Ordinal).Where(n => !Classes.Contains(n, StringComparer.Ordinal)).Order(StringComparer.Ordinal));
        return all.Count <= MaxClasses ? all
            : throw new ArgumentException($"The model knows {Classes.Count} classes and the data brings {all.Count - Classes.Count} more; a model holds at most {MaxClasses}.");
    }
}

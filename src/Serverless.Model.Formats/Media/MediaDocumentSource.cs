using System.Security.Cryptography;
using Serverless.Model.Data;

namespace Serverless.Model.Media;

/// <summary>
/// Images and audio as documents. An image is one document: its class token (when the dataset uses class folders)
/// followed by its sub-pixels in raster order (row by row, channels interleaved), each quantized to
/// <c>v · levels / 256</c>. A WAV file is mixed to mono, resampled, μ-law encoded (256 levels) and cut into documents of
/// at most <c>clip_seconds</c> (a last piece shorter than a tenth of that is dropped unless it is the only one), each
/// preceded by the class token. Classes are the folders directly under the dataset root
/// (<c>{root}/{class}/x.png</c>, torchvision's <c>ImageFolder</c> layout); files directly in the root have none; a
/// dataset uses class folders for every file or for none.
/// </summary>
public sealed class MediaDocumentSource : IDocumentSource
{
    private readonly MediaSettings _settings;
    private readonly string? _root;
    private Dictionary<string, int> _classTokens = [];

    /// <summary>Creates the source for a model's <paramref name="settings"/>; <paramref name="root"/> is the dataset folder (null: no classes).</summary>
    public MediaDocumentSource(MediaSettings settings, string? root)
    {
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _root = root;
        Classes = settings.Classes;
    }

    /// <inheritdoc />
    public int EndOfText => _settings.StartToken;

    /// <inheritdoc />
    public string DocumentHint => _settings.Modality == Media.Modality.Image ? "each image is one document" : "each clip of a WAV file is one document";

    /// <inheritdoc />
    public IReadOnlyList<string>? Classes { get; private set; }

    /// <inheritdoc />
    public string Modality => _settings.Modality;

    /// <summary>The class folder of <paramref name="file"/>, or null when it lies directly in the root.</summary>
    public string? ClassOf(string file)
    {
        if (_root is null)
        {
            return null;
        }

        var relative = Path.GetRelativePath(_root, file).Replace('\\', '/').Split('/');
        return relative.Length >= 2 ? relative[0] : null;
    }

    /// <summary>Errors for files no modality reads or of another modality than <paramref name="modality"/>.</summary>
    public static void CheckKinds(IReadOnlyList<string> files, string modality, DatasetErrors errors)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(errors);
        var kinds = files.Where(f => Media.Modality.OfFile(f) is not null).GroupBy(f => Media.Modality.OfFile(f)!).ToList();
        if (kinds.Count > 1)
        {
            errors.Add(new DatasetError(Path.GetFileName(files[0]), null, null, "the dataset mixes modalities; a dataset is all text, all images or all audio: " +
                string.Join(", ", kinds.Select(k => $"{Path.GetFileName(k.First())} is {k.Key}")) + "."));
            return;
        }

        if (kinds.Count == 1 && kinds[0].Key != modality)
        {
            errors.Add(new DatasetError(Path.GetFileName(kinds[0].First()), null, null,
                $"the file is {kinds[0].Key} but the base model reads {modality}; use a base model pre-trained on {kinds[0].Key} (tune pretrain --modality {kinds[0].Key})."));
        }
    }

    /// <inheritdoc />
    public void Check(IReadOnlyList<string> files, DatasetErrors errors)
    {
        CheckKinds(files, _settings.Modality, errors);
        if (errors.Any)
        {
            return;
        }

        var byClass = files.GroupBy(ClassOf).ToList();
        var unclassed = byClass.FirstOrDefault(g => g.Key is null);
        if (unclassed is not null && byClass.Count > 1)
        {
            errors.Add(new DatasetError(Path.GetFileName(unclassed.First()), null, null,
                $"the file lies directly in the dataset folder while others are in class folders ({byClass.First(g => g.Key is not null).Key}/…); put every file in a class folder or none."));
            return;
        }

        foreach (var single in byClass.Where(g => g.Key is not null && g.Count() == 1))
        {
            errors.Add(new DatasetError($"{single.Key}/{Path.GetFileName(single.First())}", null, null,
                $"the class folder '{single.Key}' holds only this file; a class needs at least 2 examples (add more, or remove the folder)."));
        }

        try
        {
            Classes = _settings.WithClasses(byClass.Where(g => g.Key is not null).Select(g => g.Key!));
            _classTokens = Classes.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => _settings.ClassToken(x.i), StringComparer.Ordinal);
        }
        catch (ArgumentException e)
        {
            errors.Add(new DatasetError(Path.GetFileName(files[0]), null, null, e.Message));
        }
    }

    /// <inheritdoc />
    public IEnumerable<SourceDocument> Read(string file, DatasetErrors errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var name = ClassOf(file) is { } c ? $"{c}/{Path.GetFileName(file)}" : Path.GetFileName(file);
        int? classToken = ClassOf(file) is { } cls && _classTokens.TryGetValue(cls, out var token) ? token : null;
        if (Media.Modality.OfFile(file) != _settings.Modality)
        {
            errors.Add(new DatasetError(name, null, null, $"not {_settings.Modality} data; the base model reads {_settings.Modality}."));
            return [];
        }

        try
        {
            return _settings.Modality == Media.Modality.Image ? [Image(file, classToken)] : Audio(file, classToken).ToList();
        }
        catch (Exception e) when (e is ImageFormatException or AudioFormatException)
        {
            errors.Add(new DatasetError(name, null, null, e.Message));
            return [];
        }
    }

    private SourceDocument Image(string file, int? classToken)
    {
        var values = ImageCodec.Read(file, _settings.ImageSize!.Value, _settings.Channels!.Value);
        var tokens = new List<int>(values.Length + 1);
        if (classToken is { } t)
        {
            tokens.Add(t);
        }

        tokens.AddRange(values.Select(v => v * _settings.Levels / 256));
        return Document(tokens, values.Length);
    }

    private IEnumerable<SourceDocument> Audio(string file, int? classToken)
    {
        var samples = WavCodec.Read(file, _settings.SampleRate!.Value);
        if (samples.Length < 2)
        {
            throw new AudioFormatException($"the WAV is too short: {samples.Length} sample(s) at {_settings.SampleRate} Hz; a clip needs at least 2.");
        }

        // Every clip of one file is drawn into the same split (the key is the whole file's audio), so no recording is
        // both trained on and scored.
        var key = FileKey(samples);
        var clip = _settings.SamplesPerClip;
        for (var start = 0; start < samples.Length; start += clip)
        {
            var length = Math.Min(clip, samples.Length - start);
            if (length < 2 || (start > 0 && length < clip / 10))
            {
                break;
            }

            var tokens = new List<int>(length + 1);
            if (classToken is { } t)
            {
                tokens.Add(t);
            }

            for (var i = 0; i < length; i++)
            {
                tokens.Add(WavCodec.MuLawEncode(samples[start + i]));
            }

            yield return Document(tokens, length) with { SplitKey = key };
        }
    }

    private static string FileKey(float[] samples)
    {
        var bytes = new byte[samples.Length];
        for (var i = 0; i < samples.Length; i++)
        {
            bytes[i] = (byte)WavCodec.MuLawEncode(samples[i]);
        }

        return Convert.ToHexString(SHA256.HashData(bytes));
    }

    private static SourceDocument Document(List<int> tokens, long units)
    {
        var bytes = new byte[tokens.Count * 2];
        for (var i = 0; i < tokens.Count; i++)
        {
            bytes[2 * i] = (byte)tokens[i];
            bytes[2 * i + 1] = (byte)(tokens[i] >> 8);
        }

        return new SourceDocument(Convert.ToHexString(SHA256.HashData(bytes)), units, () => tokens);
    }
}

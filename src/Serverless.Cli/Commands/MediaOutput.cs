using System.Text.Json;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;

namespace Serverless.Cli.Commands;

/// <summary><c>tune generate</c> for image and audio models: a PNG (a grid when several) or a WAV.</summary>
internal static class MediaOutput
{
    public static int Generate(TextWriter writer, Gpt2Model model, string? output, string? className, int count, double seconds, long seed, double temperature, bool json)
    {
        var media = model.Config.Media!;
        if (output is null)
        {
            throw new CliException($"give --out FILE{(media.Modality == Modality.Image ? ".png" : ".wav")}: the model generates {media.Modality}.");
        }

        var extension = media.Modality == Modality.Image ? ".png" : ".wav";
        if (!output.EndsWith(extension, StringComparison.OrdinalIgnoreCase))
        {
            throw new CliException($"--out {output}: the model generates {media.Modality}; name the file *{extension}.");
        }

        if (count is < 1 or > 256)
        {
            throw new CliException($"--count {count}: it must be between 1 and 256.");
        }

        if (media.Modality == Modality.Audio && seconds is not (> 0 and <= 60))
        {
            throw new CliException($"--seconds {seconds}: it must be more than 0 and at most 60.");
        }

        IReadOnlyList<int?> rows;
        if (className is not null)
        {
            var index = media.Classes.ToList().IndexOf(className);
            if (index < 0)
            {
                throw new CliException(media.Classes.Count == 0
                    ? $"--class {className}: the model was trained without classes; drop --class."
                    : $"--class {className}: the model knows {string.Join(", ", media.Classes)}.");
            }

            rows = Enumerable.Repeat<int?>(index, count).ToList();
        }
        else
        {
            // A model trained with classes has seen every document after its class token: ask for its classes in turn.
            rows = Enumerable.Range(0, count).Select(i => media.Classes.Count == 0 ? (int?)null : i % media.Classes.Count).ToList();
        }

        var values = media.Modality == Modality.Image ? media.ValuesPerImage : (int)Math.Round(seconds * media.SampleRate!.Value);
        var lastShown = -1;
        var generated = MediaGenerator.Generate(model, rows, values, seed, temperature, json ? null : done =>
        {
            var percent = done * 10 / values;
            if (percent != lastShown && values >= 2000)
            {
                lastShown = percent;
                writer.Write($"\rgenerating {done * 100 / values,3}% ({done:N0}/{values:N0} per {(media.Modality == Modality.Image ? "image" : "clip")})");
            }
        });
        if (lastShown >= 0)
        {
            writer.WriteLine();
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        if (media.Modality == Modality.Image)
        {
            ImageCodec.WriteGrid(output, generated.Select(g => MediaGenerator.ToPixels(g, media.Levels)).ToList(), media.ImageSize!.Value, media.Channels!.Value,
                columns: (int)Math.Ceiling(Math.Sqrt(count)), zoom: count == 1 ? 8 : 4);
        }
        else
        {
            // Several clips go into one file, a quarter second of silence between them.
            var gap = new float[media.SampleRate!.Value / 4];
            var all = generated.SelectMany((g, i) => (i == 0 ? [] : gap).Concat(MediaGenerator.ToSamples(g))).ToArray();
            WavCodec.Write(output, all, media.SampleRate.Value);
        }

        var classes = rows.Select(r => r is { } i ? media.Classes[i] : null).ToList();
        writer.WriteLine(json
            ? JsonSerializer.Serialize(new { file = output, modality = media.Modality, count, classes })
            : $"Wrote {count} {(media.Modality == Modality.Image ? $"image{(count > 1 ? "s" : "")}" : $"clip{(count > 1 ? "s" : "")} of {seconds:0.##} s")}" +
              (classes.Any(c => c is not null) ? $" ({string.Join(", ", classes.Distinct())})" : "") + $" to {output}.");
        return 0;
    }
}

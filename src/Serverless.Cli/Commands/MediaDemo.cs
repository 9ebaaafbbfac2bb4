using System.Formats.Tar;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Cli.Pipeline;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Model.FineTuning;
using Serverless.Model.Media;
using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary>
/// <c>tune demo --modality image|audio</c>: the text demo's story for the other two. Images: a base pre-trained on
/// glyphs of 20 fonts (class folder per character) is fine-tuned through the pipeline on a calligraphic font it never
/// saw (5 images per character). Audio: a base pre-trained on three male espeak-ng voices (class folder per voice) is
/// fine-tuned on a female voice it never heard, whose class token is new. Both corpora are shipped
/// (<c>data/media/</c>); the first run pre-trains the base, later runs reuse it.
/// </summary>
internal static class MediaDemo
{

    /// <summary>Pre-training steps on the first run (the demo's three minutes include them).</summary>
    public static int DefaultPretrainSteps(string modality) => modality == Modality.Image ? 250 : 200;

    public static async Task<int> RunAsync(TextWriter writer, EmbeddedPipeline pipeline, string modality, int? steps, int? pretrainSteps, bool quiet, CancellationToken cancellation)
    {
        var model = $"demo-{modality}";
        var baseName = $"{model}-base";
        var baseDirectory = Path.Combine(pipeline.Home, Containers.BaseModels, baseName);
        var corpus = Path.Combine(pipeline.Home, "work", $"{model}-corpus");
        if (Directory.Exists(corpus))
        {
            Directory.Delete(corpus, recursive: true);
        }

        Directory.CreateDirectory(corpus);
        var archive = modality == Modality.Image ? "glyphs.tar.gz" : "speech.tar.gz";
        await using (var gzip = new GZipStream(Resource(archive), CompressionMode.Decompress))
        {
            await TarFile.ExtractToDirectoryAsync(gzip, corpus, overwriteFiles: true, cancellation);
        }

        try
        {
            if (await pipeline.Blobs.GetAsync(Containers.BaseModels, $"{baseName}/model.safetensors", cancellation) is null)
            {
                if (!quiet)
                {
                    writer.WriteLine(modality == Modality.Image
                        ? $"First run: pre-training the image base on 1,440 glyphs of 20 fonts (A–Z, 0–9) into {baseDirectory} (about a minute)…"
                        : $"First run: pre-training the audio base on 2 min 19 s of three synthesized male voices into {baseDirectory} (about a minute)…");
                }

                var spec = PretrainCommand.DefaultSpec.WithSteps(pretrainSteps ?? DefaultPretrainSteps(modality));
                var root = Path.Combine(corpus, "base");
                var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
                var pretrained = new ProgressView(writer, quiet).Run("pretrain", report => Pretraining.Run(files, baseDirectory, "tiny", "bytes", spec,
                    p => report("pretrain", p), spec.MediaFor(modality), root, cancellation));
                if (!quiet)
                {
                    writer.WriteLine(FormattableString.Invariant($"Base model: {pretrained.Parameters:N0} parameters, validation {(modality == Modality.Image ? "bits/dim" : "bits/sample")} {pretrained.Validation.Loss / Math.Log(2):F3}."));
                }
            }

            var entity = await DemoCommand.SubscribeAsync(pipeline, model, cancellation);
            var runs = await DemoCommand.RunsAsync(pipeline, model, cancellation);
            await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}",
                new MemoryStream(Encoding.UTF8.GetBytes(Spec(baseName, steps, runs).ToJsonString())), cancellationToken: cancellation);
            await foreach (var old in pipeline.Blobs.ListAsync(Containers.Datasets, model + "/", cancellation))
            {
                if (old.Name != $"{model}/{Containers.SpecFile}")
                {
                    await pipeline.Blobs.DeleteAsync(Containers.Datasets, old.Name, cancellationToken: cancellation);
                }
            }

            var fresh = Path.Combine(corpus, "new");
            var dropped = 0;
            foreach (var file in Directory.EnumerateFiles(fresh, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                await using var content = File.OpenRead(file);
                await pipeline.Blobs.WriteAsync(Containers.Datasets, $"{model}/{Path.GetRelativePath(fresh, file).Replace('\\', '/')}", content, cancellationToken: cancellation);
                dropped++;
            }

            if (!quiet)
            {
                writer.WriteLine(modality == Modality.Image
                    ? $"Dropped {dropped} glyphs of a calligraphic font the base never saw (URW Z003) into {Path.Combine(pipeline.Home, Containers.Datasets, model)}/{{class}}/; following the pipeline…"
                    : $"Dropped {dropped} recordings of a female voice the base never heard into {Path.Combine(pipeline.Home, Containers.Datasets, model)}/female/; following the pipeline…");
            }

            var outcome = await DemoCommand.FollowAsync(writer, pipeline, model, entity, quiet, cancellation);
            var (exit, published, metrics) = await DemoCommand.PrintOutcomeAsync(writer, pipeline, outcome, quiet, cancellation);
            if (exit is { } code)
            {
                return code;
            }

            var version = Path.Combine(pipeline.Home, published.Uri);
            writer.WriteLine();
            writer.WriteLine($"Published {model}@{published.Version}: {string.Join(", ", metrics.SampleFiles.Select(f => Path.Combine(version, f)))}");
            writer.WriteLine(modality == Modality.Image
                ? $"samples.png rows: real held-out glyphs, then base, scratch and candidate samples. More: tune generate --model {model}@champion --home {pipeline.Home} --class A --count 16 --out a.png"
                : $"Listen to samples/real-*.wav against base-, scratch- and candidate-*.wav. More: tune generate --model {model}@champion --home {pipeline.Home} --class female --seconds 2 --out voice.wav");
            return 0;
        }
        finally
        {
            Directory.Delete(corpus, recursive: true);
        }
    }

    /// <summary>The media demos' spec: 60 steps; no bias probes (they are text).</summary>
    private static JsonObject Spec(string baseName, int? steps, int run)
    {
        var spec = DemoCommand.CommonSpec(baseName, steps ?? 60, run, evalEvery: 20, minImprovementOverBase: 0.0);
        spec["biasProbes"] = "none";
        return spec;
    }

    private static Stream Resource(string name) =>
        Assembly.GetExecutingAssembly().GetManifestResourceStream("media/" + name)
        ?? throw new InvalidOperationException($"The demo corpus {name} is not embedded in this build.");
}

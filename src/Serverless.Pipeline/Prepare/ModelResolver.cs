using Serverless.Core.Naming;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Publish;

namespace Serverless.Pipeline.Prepare;

/// <summary>
/// Turns a model reference into a local model directory: <c>name</c> is <c>base-models/{name}/</c>; <c>model@alias</c>
/// or <c>model@3</c> is a registry version, whose files are verified against its manifest's SHA-256 before use.
/// </summary>
public sealed class ModelResolver(LocalFiles files, ModelRegistry registry, PipelineOptions options)
{
    private static readonly string[] ConfigOnly = ["config.json"];
    private static readonly string[] WholeModel = ["config.json", "model.safetensors"];

    /// <summary>The local directory of the model, or null when the reference names nothing.</summary>
    public Task<string?> ResolveAsync(string reference, CancellationToken cancellationToken = default) =>
        ResolveAsync(reference, WholeModel, cancellationToken);

    /// <summary>A local directory holding just the model's <c>config.json</c> (enough to pick its tokenizer), or null.</summary>
    public Task<string?> ResolveConfigAsync(string reference, CancellationToken cancellationToken = default) =>
        ResolveAsync(reference, ConfigOnly, cancellationToken);

    private async Task<string?> ResolveAsync(string reference, string[] wanted, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at < 0)
        {
            BlobNames.Model(reference);
            var local = Path.Combine(options.WorkDirectory, "models", "base", reference);
            foreach (var file in wanted)
            {
                if (!await files.DownloadAsync(Containers.BaseModels, $"{reference}/{file}", Path.Combine(local, file), reuse: true, cancellationToken))
                {
                    return null;
                }
            }

            return local;
        }

        var (model, selector) = (BlobNames.Model(reference[..at]), reference[(at + 1)..]);
        var version = await registry.FindVersionAsync(model, selector, cancellationToken);
        if (version is null)
        {
            return null;
        }

        var directory = Path.Combine(options.WorkDirectory, "models", "registry", model, version.Value.ToString());
        await registry.DownloadVerifiedAsync(model, version.Value, directory, wanted, cancellationToken);
        return directory;
    }

    /// <summary>The tokenizer name of a local model directory.</summary>
    public static string TokenizerOf(string directory) => Model.Gpt2.Gpt2Config.Load(Path.Combine(directory, "config.json")).TokenizerName;
}

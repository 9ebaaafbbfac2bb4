using System.Text.Json.Nodes;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Pipeline.Specs;

/// <summary>Reads a model's <c>datasets/{model}/tune.json</c>; absent means all defaults.</summary>
public sealed class SpecReader(IBlobStore blobs)
{
    /// <summary>The model's spec, or <paramref name="overrides"/> when given (a submitted spec).</summary>
    public async Task<PipelineSpec> ReadAsync(string model, JsonObject? overrides = null, CancellationToken cancellationToken = default)
    {
        var source = $"datasets/{model}/{Containers.SpecFile}";
        if (overrides is not null)
        {
            return PipelineSpec.Parse(overrides, "submitted spec");
        }

        var opened = await blobs.OpenReadAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", cancellationToken);
        if (opened is null)
        {
            return PipelineSpec.Parse((JsonObject?)null, source);
        }

        await using var content = opened.Value.Content;
        using var reader = new StreamReader(content);
        return PipelineSpec.Parse(await reader.ReadToEndAsync(cancellationToken), source);
    }
}

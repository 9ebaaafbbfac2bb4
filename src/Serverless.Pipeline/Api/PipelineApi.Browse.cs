using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;

namespace Serverless.Pipeline.Api;

/// <summary>A file of a registry version, opened for reading.</summary>
/// <param name="Content">Its content (the caller disposes it).</param>
/// <param name="ContentType">The media type to serve it as.</param>
/// <param name="Length">Bytes.</param>
public sealed record ApiFile(Stream Content, string ContentType, long Length);

/// <summary>The read side for people: job listings and a registry version with its files.</summary>
public sealed partial class PipelineApi
{
    /// <summary>The most jobs one listing returns. <value>500</value>.</summary>
    public const int MaxJobsListed = 500;

    /// <summary>
    /// GET /api/jobs?model=&amp;state=&amp;limit=: the newest jobs first, as summaries (state, progress, version, the
    /// first line of an error), optionally only one model's or one state's; <c>more</c> says whether older ones follow.
    /// </summary>
    public async Task<ApiResult> ListJobsAsync(string? model = null, string? state = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        if (model is not null && !BlobNames.IsModel(model))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{model}' is not a valid model name.");
        }

        JobState? only = null;
        if (!string.IsNullOrEmpty(state))
        {
            if (!Enum.TryParse<JobState>(state, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
            {
                return ApiResult.Error(HttpStatusCode.BadRequest,
                    $"'{state}' is not a job state (one of {string.Join(", ", Enum.GetNames<JobState>().Select(n => n.ToLowerInvariant()))}).");
            }

            only = parsed;
        }

        if (limit is < 1 or > MaxJobsListed)
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"limit must be between 1 and {MaxJobsListed} (got {limit}).");
        }

        // Through the newest-first index: the cost follows the page asked for (one more job says whether there are more),
        // not the history — except with a state filter, which reads on until it has found a page of that state.
        var list = new JsonArray();
        var more = false;
        await foreach (var job in jobs.ListNewestAsync(model, cancellationToken))
        {
            if (only is not null && job.State != only)
            {
                continue;
            }

            if (list.Count == limit)
            {
                more = true;
                break;
            }

            list.Add(Summary(job));
        }

        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["jobs"] = list, ["more"] = more });
    }

    /// <summary>A job in one line's worth of fields, as the jobs table and the live stream show it.</summary>
    public static JsonObject Summary(JobDocument job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return new JsonObject
        {
            ["jobId"] = job.JobId,
            ["model"] = job.Model,
            ["state"] = job.State.ToString().ToLowerInvariant(),
            ["trigger"] = job.Trigger,
            ["strategy"] = job.Spec["strategy"] is JsonValue strategy && strategy.TryGetValue<string>(out var named) ? named : "full",
            ["attempts"] = job.Attempts,
            ["createdAt"] = job.CreatedAt,
            ["updatedAt"] = job.History.Count > 0 ? job.History[^1].At : job.CreatedAt,
            ["progress"] = job.Progress is null ? null : JsonSerializer.SerializeToNode(job.Progress, Json),
            ["version"] = job.Version,
            ["cancelRequested"] = job.CancelRequested,
            ["error"] = job.Error?.Split('\n')[0],
            ["wait"] = job.Wait?.Reason,
        };
    }

    /// <summary>
    /// GET /api/models/{name}/versions/{selector} (a number, <c>latest</c> or <c>champion</c>): the version's index
    /// entry and aliases, manifest, metrics, model card (Markdown) and the names of its files.
    /// </summary>
    public async Task<ApiResult> GetVersionAsync(string name, string selector, CancellationToken cancellationToken = default)
    {
        if (!BlobNames.IsModel(name))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{name}' is not a valid model name.");
        }

        if (await registry.ReadIndexAsync(name, cancellationToken) is not { } found)
        {
            return ApiResult.Error(HttpStatusCode.NotFound, $"no model '{name}' in the registry.");
        }

        if (await registry.FindVersionAsync(name, selector, cancellationToken) is not { } version)
        {
            var newest = found.Index.Versions.Where(v => v.State == "ready").Select(v => v.Version).ToList();
            return ApiResult.Error(HttpStatusCode.NotFound, $"'{name}@{selector}' names no ready version ({(found.Index.HasOlder ? "newest versions" : "versions")}: {string.Join(", ", newest)}).");
        }

        var prefix = $"{name}/{version}/";
        var files = new JsonArray();
        await foreach (var item in blobs.ListAsync(Containers.Registry, prefix, cancellationToken))
        {
            files.Add(new JsonObject { ["name"] = item.Name[prefix.Length..], ["length"] = item.Length });
        }

        var entry = await registry.GetVersionAsync(name, version, cancellationToken);
        return new ApiResult(HttpStatusCode.OK, new JsonObject
        {
            ["model"] = name,
            ["version"] = version,
            ["entry"] = JsonSerializer.SerializeToNode(entry, Json),
            ["aliases"] = new JsonArray([.. found.Index.Aliases.Where(a => a.Value == version).Select(a => (JsonNode)a.Key)]),
            ["versions"] = new JsonArray([.. found.Index.Versions.Where(v => v.State == "ready").Select(v => (JsonNode)v.Version)]),
            ["manifest"] = await ReadJsonAsync(prefix + "manifest.json", cancellationToken),
            ["metrics"] = await ReadJsonAsync(prefix + "metrics.json", cancellationToken),
            ["card"] = await ReadTextAsync(prefix + "README.md", cancellationToken),
            ["files"] = files,
        });
    }

    /// <summary>
    /// GET /api/models/{name}/versions/{version}/files/{file}: one file of a ready version (the loss plot, a sample, the
    /// weights), or null with the reason.
    /// </summary>
    public async Task<(ApiFile? File, ApiResult? Error)> OpenVersionFileAsync(string name, string selector, string file, CancellationToken cancellationToken = default)
    {
        if (!BlobNames.IsModel(name))
        {
            return (null, ApiResult.Error(HttpStatusCode.BadRequest, $"'{name}' is not a valid model name."));
        }

        if (BlobNames.Problem(file) is { } problem)
        {
            return (null, ApiResult.Error(HttpStatusCode.BadRequest, $"'{file}' is not a valid file name: {problem}."));
        }

        if (await registry.FindVersionAsync(name, selector, cancellationToken) is not { } version)
        {
            return (null, ApiResult.Error(HttpStatusCode.NotFound, $"'{name}@{selector}' names no ready version."));
        }

        return await blobs.OpenReadAsync(Containers.Registry, $"{name}/{version}/{file}", cancellationToken) is { } opened
            ? (new ApiFile(opened.Content, ContentType(file), opened.Item.Length), null)
            : (null, ApiResult.Error(HttpStatusCode.NotFound, $"{name}@{version} has no file '{file}'."));
    }

    /// <summary>The media type a version's file is served as; anything unknown is a download, never rendered.</summary>
    public static string ContentType(string file) => Path.GetExtension(file).ToLowerInvariant() switch
    {
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".wav" => "audio/wav",
        ".json" => "application/json",
        ".md" or ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };

    private async Task<JsonNode?> ReadJsonAsync(string name, CancellationToken cancellationToken)
    {
        if (await blobs.OpenReadAsync(Containers.Registry, name, cancellationToken) is not { } opened)
        {
            return null;
        }

        await using var content = opened.Content;
        return await JsonNode.ParseAsync(content, cancellationToken: cancellationToken);
    }

    private async Task<string?> ReadTextAsync(string name, CancellationToken cancellationToken)
    {
        if (await blobs.OpenReadAsync(Containers.Registry, name, cancellationToken) is not { } opened)
        {
            return null;
        }

        await using var content = opened.Content;
        using var reader = new StreamReader(content);
        return await reader.ReadToEndAsync(cancellationToken);
    }
}

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Training;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Publish;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Api;

/// <summary>An HTTP answer: status and JSON body.</summary>
/// <param name="Status">The status code.</param>
/// <param name="Body">The JSON body.</param>
public sealed record ApiResult(HttpStatusCode Status, JsonNode Body)
{
    internal static ApiResult Error(HttpStatusCode status, string message) => new(status, new JsonObject { ["error"] = message });
}

/// <summary>
/// The HTTP API's logic, host-agnostic (the Functions app's HTTP triggers are a few lines over it): list and show
/// models, show a job, submit a job, cancel a job, retry a job. Bodies over <see cref="MaxBodyBytes"/> are refused; every name is
/// validated before it reaches storage.
/// </summary>
public sealed partial class PipelineApi(JobStore jobs, ModelRegistry registry, IBlobStore blobs, PipelineBus bus)
{
    /// <summary>The largest request body accepted. <value>64 KiB</value>.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    private static readonly JsonSerializerOptions Json = CloudEvent.JsonOptions;

    /// <summary>GET /api/models.</summary>
    public async Task<ApiResult> ListModelsAsync(CancellationToken cancellationToken = default)
    {
        var models = new JsonArray();
        await foreach (var item in blobs.ListAsync(Containers.Registry, "", cancellationToken))
        {
            if (item.Name.EndsWith("/index.json", StringComparison.Ordinal) && await registry.ReadIndexAsync(item.Name[..^11], cancellationToken) is { } found)
            {
                models.Add(JsonSerializer.SerializeToNode(found.Index.Normalized(), Json));
            }
        }

        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["models"] = models });
    }

    /// <summary>GET /api/models/{name}: the newest versions, aliases and each listed version's metrics.</summary>
    public async Task<ApiResult> GetModelAsync(string name, CancellationToken cancellationToken = default)
    {
        if (BlobNames.Problem(name) is not null || !IsModelName(name))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{name}' is not a valid model name.");
        }

        if (await registry.ReadIndexAsync(name, cancellationToken) is not { } found)
        {
            return ApiResult.Error(HttpStatusCode.NotFound, $"no model '{name}' in the registry.");
        }

        // The head's versions (the newest, every pending one, the aliases' targets): constant work however many
        // versions the model has. `older` says whether more exist; `tune models NAME --all` lists them.
        var body = JsonSerializer.SerializeToNode(found.Index.Normalized(), Json)!.AsObject();
        body["older"] = found.Index.HasOlder;
        var metrics = new JsonObject();
        foreach (var version in found.Index.Versions.Where(v => v.State == "ready"))
        {
            if (await blobs.OpenReadAsync(Containers.Registry, $"{name}/{version.Version}/metrics.json", cancellationToken) is { } opened)
            {
                await using var content = opened.Content;
                metrics[version.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)] = await JsonNode.ParseAsync(content, cancellationToken: cancellationToken);
            }
        }

        body["metrics"] = metrics;
        return new ApiResult(HttpStatusCode.OK, body);
    }

    /// <summary>GET /api/jobs/{id}.</summary>
    public async Task<ApiResult> GetJobAsync(string id, CancellationToken cancellationToken = default)
    {
        if (JobIdProblem(id) is { } invalid)
        {
            return invalid;
        }

        return await jobs.GetAsync(id, cancellationToken) is { } found
            ? new ApiResult(HttpStatusCode.OK, JsonSerializer.SerializeToNode(found.Job, Json)!)
            : ApiResult.Error(HttpStatusCode.NotFound, $"no job '{id}'.");
    }

    /// <summary>POST /api/jobs with <c>{"model": "…", "spec": {…}}</c>: requests a job for the model's current data.</summary>
    public async Task<ApiResult> SubmitAsync(Stream body, CancellationToken cancellationToken = default)
    {
        var read = await ReadBodyAsync(body, cancellationToken);
        if (read.Error is { } error)
        {
            return error;
        }

        var model = read.Json!["model"]?.GetValue<string>();
        if (model is null || !IsModelName(model))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, "body field \"model\": a model name (1–64 of a–z, 0–9, '-', '_', '.') is required.");
        }

        var spec = read.Json["spec"] as JsonObject;
        if (spec is not null)
        {
            try
            {
                PipelineSpec.Parse(spec, "spec");
            }
            catch (SpecException e)
            {
                return new ApiResult(HttpStatusCode.BadRequest, new JsonObject { ["error"] = e.Message, ["problems"] = new JsonArray([.. e.Problems.Select(p => (JsonNode)p)]) });
            }
        }

        var key = "submit-" + Guid.NewGuid().ToString("N");
        await bus.RequestAsync(new FineTuneRequested(model, "submit", key, spec), PipelineBus.StableId(model, key), cancellationToken: cancellationToken);
        return new ApiResult(HttpStatusCode.Accepted, new JsonObject { ["model"] = model, ["triggerKey"] = key });
    }

    /// <summary>POST /api/jobs/{id}/cancel.</summary>
    public async Task<ApiResult> CancelAsync(string id, CancellationToken cancellationToken = default)
    {
        var found = await GetJobAsync(id, cancellationToken);
        if (found.Status != HttpStatusCode.OK)
        {
            return found;
        }

        var now = bus.Clock.GetUtcNow();
        var job = await jobs.UpdateAsync(id, j => j.RequestCancel(now), cancellationToken);
        return new ApiResult(HttpStatusCode.Accepted, JsonSerializer.SerializeToNode(job, Json)!);
    }

    /// <summary>
    /// POST /api/jobs/{id}/retry: runs a failed, waiting or cancelled job again from its last complete checkpoint, with a
    /// fresh attempt budget. Idempotent: two retries at once start one run (the job document's conditional write lets
    /// one move it; the other finds it already dispatched and answers the same). 409 for a job that cannot be retried.
    /// </summary>
    public async Task<ApiResult> RetryAsync(string id, CancellationToken cancellationToken = default)
    {
        if (JobIdProblem(id) is { } invalid)
        {
            return invalid;
        }

        if (await jobs.GetAsync(id, cancellationToken) is not { Job: var current })
        {
            return ApiResult.Error(HttpStatusCode.NotFound, $"no job '{id}'.");
        }

        if (current.DatasetErrors is { Count: > 0 })
        {
            return ApiResult.Error(HttpStatusCode.Conflict,
                $"job {id} was refused for its dataset or spec ({current.Error}); the same snapshot would fail again: fix the data or tune.json and upload again, which starts a new job.");
        }

        if (JobStates.CanRetry(current.State) && (current.Swept || await blobs.GetAsync(Containers.Prepared, $"{id}/manifest.json", cancellationToken) is null))
        {
            return ApiResult.Error(HttpStatusCode.Conflict, current.Swept
                ? $"job {id}'s prepared data and checkpoints were removed by retention; upload the dataset again to train anew."
                : $"job {id} was never prepared; upload the dataset again to train anew.");
        }

        var now = bus.Clock.GetUtcNow();
        var moved = false;
        var job = await jobs.UpdateAsync(id, j =>
        {
            var retried = j.Retry(now);
            moved = retried is not null;
            return retried;
        }, cancellationToken);
        if (!moved && !(job.State == JobState.Dispatched && job.History[^1].Note?.StartsWith("retried on request", StringComparison.Ordinal) == true))
        {
            return ApiResult.Error(HttpStatusCode.Conflict, job.State == JobState.Waiting
                ? $"job {id} is waiting for a trainer run the environment has not started yet ({job.Wait?.Reason}); it runs when that run starts — or cancel it, then retry it, to start a new run (the late one then does nothing)."
                : $"job {id} is {job.State.ToString().ToLowerInvariant()}: only failed, waiting and cancelled jobs can be retried.");
        }

        // The request's id is the transition's: a second retry of the same state sends nothing new.
        var retry = job.History.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await bus.RequestAsync(new FineTuneRequested(job.Model, "retry", job.TriggerKey, JobId: id), PipelineBus.StableId(id, "retry-on-request", retry), cancellationToken: cancellationToken);
        return new ApiResult(HttpStatusCode.Accepted, JsonSerializer.SerializeToNode(job, Json)!);
    }

    private static ApiResult? JobIdProblem(string id) =>
        BlobNames.Problem(id + ".json") is not null || id.Contains('/', StringComparison.Ordinal)
            ? ApiResult.Error(HttpStatusCode.BadRequest, $"'{id}' is not a valid job id.")
            : null;

    private static bool IsModelName(string name)
    {
        try
        {
            BlobNames.Model(name);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static async Task<(JsonObject? Json, ApiResult? Error)> ReadBodyAsync(Stream body, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxBodyBytes + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = await body.ReadAsync(buffer.AsMemory(total), cancellationToken)) > 0)
        {
            total += read;
        }

        if (total > MaxBodyBytes)
        {
            return (null, ApiResult.Error(HttpStatusCode.RequestEntityTooLarge, $"the body is larger than {MaxBodyBytes} bytes."));
        }

        try
        {
            return JsonNode.Parse(buffer.AsSpan(0, total)) is JsonObject obj
                ? (obj, null)
                : (null, ApiResult.Error(HttpStatusCode.BadRequest, "the body must be a JSON object."));
        }
        catch (JsonException e)
        {
            return (null, ApiResult.Error(HttpStatusCode.BadRequest, $"the body is not valid JSON: {e.Message}"));
        }
    }
}

using System.Text.Json;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Serverless.Pipeline.Api;

namespace Serverless.Functions;

/// <summary>The HTTP API (function-level keys on every route); each body is one call into <see cref="PipelineApi"/>.</summary>
public sealed class Api(PipelineApi api)
{
    /// <summary>GET /api/models.</summary>
    [Function("ListModels")]
    public async Task<HttpResponseData> ListModels([HttpTrigger(AuthorizationLevel.Function, "get", Route = "models")] HttpRequestData request) =>
        await Respond(request, await api.ListModelsAsync(request.FunctionContext.CancellationToken));

    /// <summary>GET /api/models/{name}.</summary>
    [Function("GetModel")]
    public async Task<HttpResponseData> GetModel([HttpTrigger(AuthorizationLevel.Function, "get", Route = "models/{name}")] HttpRequestData request, string name) =>
        await Respond(request, await api.GetModelAsync(name, request.FunctionContext.CancellationToken));

    /// <summary>GET /api/models/{name}/versions/{version}: a version's manifest, metrics and card (a number, latest or champion).</summary>
    [Function("GetVersion")]
    public async Task<HttpResponseData> GetVersion([HttpTrigger(AuthorizationLevel.Function, "get", Route = "models/{name}/versions/{version}")] HttpRequestData request, string name, string version) =>
        await Respond(request, await api.GetVersionAsync(name, version, request.FunctionContext.CancellationToken));

    /// <summary>GET /api/jobs?model=&amp;state=&amp;limit=: the newest jobs first.</summary>
    [Function("ListJobs")]
    public async Task<HttpResponseData> ListJobs([HttpTrigger(AuthorizationLevel.Function, "get", Route = "jobs")] HttpRequestData request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var query = System.Web.HttpUtility.ParseQueryString(request.Url.Query);
        var limit = query["limit"] is not { } given ? 50
            : int.TryParse(given, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0;   // 0: refused, naming the range
        return await Respond(request, await api.ListJobsAsync(query["model"], query["state"], limit, request.FunctionContext.CancellationToken));
    }

    /// <summary>GET /api/jobs/{id}.</summary>
    [Function("GetJob")]
    public async Task<HttpResponseData> GetJob([HttpTrigger(AuthorizationLevel.Function, "get", Route = "jobs/{id}")] HttpRequestData request, string id) =>
        await Respond(request, await api.GetJobAsync(id, request.FunctionContext.CancellationToken));

    /// <summary>POST /api/jobs.</summary>
    [Function("SubmitJob")]
    public async Task<HttpResponseData> SubmitJob([HttpTrigger(AuthorizationLevel.Function, "post", Route = "jobs")] HttpRequestData request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return await Respond(request, await api.SubmitAsync(request.Body, request.FunctionContext.CancellationToken));
    }

    /// <summary>POST /api/jobs/{id}/cancel.</summary>
    [Function("CancelJob")]
    public async Task<HttpResponseData> CancelJob([HttpTrigger(AuthorizationLevel.Function, "post", Route = "jobs/{id}/cancel")] HttpRequestData request, string id) =>
        await Respond(request, await api.CancelAsync(id, request.FunctionContext.CancellationToken));

    /// <summary>POST /api/jobs/{id}/retry.</summary>
    [Function("RetryJob")]
    public async Task<HttpResponseData> RetryJob([HttpTrigger(AuthorizationLevel.Function, "post", Route = "jobs/{id}/retry")] HttpRequestData request, string id) =>
        await Respond(request, await api.RetryAsync(id, request.FunctionContext.CancellationToken));

    private static async Task<HttpResponseData> Respond(HttpRequestData request, ApiResult result)
    {
        ArgumentNullException.ThrowIfNull(request);
        var response = request.CreateResponse(result.Status);
        response.Headers.Add("Content-Type", "application/json");
        await response.WriteStringAsync(result.Body.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        return response;
    }
}

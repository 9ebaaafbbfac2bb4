using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Core;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Serverless.Core.Ports;

namespace Serverless.Azure.Dispatch;

/// <summary>Where the trainer job lives and how to start it.</summary>
public sealed record ContainerAppsJobOptions
{
    /// <summary>The subscription id.</summary>
    public required string SubscriptionId { get; init; }

    /// <summary>The resource group.</summary>
    public required string ResourceGroup { get; init; }

    /// <summary>The Container Apps job's name (the trainer).</summary>
    public required string JobName { get; init; }

    /// <summary>The trainer image (the start request's template names it).</summary>
    public required string Image { get; init; }

    /// <summary>The container's name in the job template. <value>trainer</value>.</summary>
    public string ContainerName { get; init; } = "trainer";

    /// <summary>Azure Resource Manager. <value>https://management.azure.com</value>.</summary>
    public Uri ArmEndpoint { get; init; } = new("https://management.azure.com");

    /// <summary>The Microsoft.App API version. <value>2025-01-01</value>.</summary>
    public string ApiVersion { get; init; } = "2025-01-01";
}

/// <summary>
/// Starts trainer runs as executions of a Container Apps job through ARM: <c>POST …/jobs/{job}/start</c> with a
/// template override that sets only <c>JOB_ID</c> in the container's environment (nothing secret), <c>…/executions/{name}/stop</c>
/// to cancel, and the execution resource for status. Tokens come from Azure.Identity (managed identity in Azure).
/// 429 and 5xx are retried honouring <c>Retry-After</c>; a circuit breaker stops hammering ARM when it keeps failing.
/// </summary>
public sealed class ContainerAppsJobDispatcher(HttpClient http, TokenCredential credential, ContainerAppsJobOptions options, ResiliencePipeline<HttpResponseMessage>? resilience = null) : IJobDispatcher
{
    private static readonly string[] RunningStates = ["Running", "Processing"];
    private readonly ResiliencePipeline<HttpResponseMessage> _resilience = resilience ?? DefaultResilience();

    /// <summary>
    /// Retry 429/5xx/network failures 4 times (exponential from 1 s with jitter, or exactly what <c>Retry-After</c> says),
    /// inside a circuit breaker that opens for 30 s when half of at least 6 calls in 30 s failed.
    /// </summary>
    public static ResiliencePipeline<HttpResponseMessage> DefaultResilience(TimeSpan? baseDelay = null, TimeSpan? breakDuration = null) =>
        new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = 4,
                Delay = baseDelay ?? TimeSpan.FromSeconds(1),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome)),
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result)),
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                FailureRatio = 0.5,
                MinimumThroughput = 6,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = breakDuration ?? TimeSpan.FromSeconds(30),
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome)),
            })
            .Build();

    private static bool IsTransient(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is HttpRequestException or TaskCanceledException
        || outcome.Result is { StatusCode: HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError or HttpStatusCode.RequestTimeout };

    private static TimeSpan? RetryAfter(HttpResponseMessage? response) =>
        response?.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow is var wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero,
            _ => null,
        };

    private string JobPath => $"subscriptions/{options.SubscriptionId}/resourceGroups/{options.ResourceGroup}/providers/Microsoft.App/jobs/{options.JobName}";

    /// <inheritdoc />
    public async Task<string> StartAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject
        {
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = options.ContainerName,
                ["image"] = options.Image,
                ["env"] = new JsonArray(new JsonObject { ["name"] = "JOB_ID", ["value"] = jobId }),
            }),
        };
        using var response = await SendAsync(HttpMethod.Post, $"{JobPath}/start", body, cancellationToken);
        var result = await ReadAsync(response, "start the trainer job", cancellationToken);
        return result["name"]?.GetValue<string>()
            ?? result["id"]?.GetValue<string>()?.Split('/')[^1]
            ?? throw new InvalidOperationException("ARM accepted the job start but returned no execution name.");
    }

    /// <inheritdoc />
    public async Task CancelAsync(string execution, CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Post, $"{JobPath}/executions/{execution}/stop", null, cancellationToken);
        if (response.StatusCode != HttpStatusCode.NotFound)
        {
            await ReadAsync(response, $"stop execution {execution}", cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Get, $"{JobPath}/executions/{execution}", null, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return ExecutionStatus.Unknown;
        }

        var status = (await ReadAsync(response, $"read execution {execution}", cancellationToken))["properties"]?["status"]?.GetValue<string>();
        return status switch
        {
            "Running" or "Processing" => ExecutionStatus.Running,
            "Succeeded" => ExecutionStatus.Succeeded,
            "Failed" or "Stopped" or "Degraded" => ExecutionStatus.Failed,
            _ => ExecutionStatus.Unknown,
        };
    }

    /// <inheritdoc />
    public async Task<int> CountRunningAsync(CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Get, $"{JobPath}/executions", null, cancellationToken);
        var list = await ReadAsync(response, "list executions", cancellationToken);
        return list["value"]?.AsArray().Count(e => RunningStates.Contains(e?["properties"]?["status"]?.GetValue<string>())) ?? 0;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, JsonNode? body, CancellationToken cancellationToken)
    {
        var token = await credential.GetTokenAsync(new TokenRequestContext([new Uri(options.ArmEndpoint, ".default").ToString()]), cancellationToken);
        var uri = new Uri(options.ArmEndpoint, $"{path}?api-version={options.ApiVersion}");
        return await _resilience.ExecuteAsync(async ct =>
        {
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Token);
            if (body is not null)
            {
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            }

            return await http.SendAsync(request, ct);
        }, cancellationToken);
    }

    private static async Task<JsonNode> ReadAsync(HttpResponseMessage response, string what, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"Azure Resource Manager refused to {what}: {(int)response.StatusCode} {response.ReasonPhrase}: {text}", null, response.StatusCode);
        }

        try
        {
            return string.IsNullOrWhiteSpace(text) ? new JsonObject() : JsonNode.Parse(text) ?? new JsonObject();
        }
        catch (JsonException e)
        {
            throw new HttpRequestException($"Azure Resource Manager answered '{what}' with something that is not JSON: {e.Message}", e);
        }
    }
}

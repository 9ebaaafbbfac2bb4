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

/// <summary>
/// Starts trainer runs as executions of a Container Apps job through ARM. The start request's template <em>replaces</em>
/// the job's (it is not merged), so each start first reads the job (<c>GET …/jobs/{job}</c>) and sends its whole
/// container — image, command, resources, every setting — plus <c>JOB_ID</c> and <c>JOB_ATTEMPT</c>: Bicep stays the
/// one source of truth. A start is never retried blindly: before the first start request, and after any answer that
/// leaves open whether the execution was created (5xx, a timeout, a dropped connection) — for up to
/// <see cref="ContainerAppsJobOptions.StartOperationTimeout"/>, since the list may show a new run late — the job's
/// executions are listed and a running one of the same job and attempt is adopted; only a throttled start (429,
/// nothing created) is simply repeated, after <c>Retry-After</c>. A <c>202</c> without the execution in its body is
/// followed through its <c>Location</c>.
/// Reads and stops (idempotent) are retried on 429/5xx honouring <c>Retry-After</c>, inside a circuit breaker.
/// Tokens come from Azure.Identity (managed identity in Azure).
/// </summary>
public sealed class ContainerAppsJobDispatcher(HttpClient http, TokenCredential credential, ContainerAppsJobOptions options,
    ResiliencePipeline<HttpResponseMessage>? resilience = null, TimeProvider? clock = null) : IJobDispatcher
{
    private static readonly string[] ActiveStates = ["Running", "Processing"];

    // The fields a start request's container may carry (JobExecutionContainer); probes and volume mounts stay the job's.
    private static readonly string[] ExecutionContainerFields = ["name", "image", "command", "args", "env", "resources"];

    private readonly ResiliencePipeline<HttpResponseMessage> _resilience = resilience ?? DefaultResilience();
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    /// <summary>
    /// Retry 429/5xx/network failures 4 times (exponential from 1 s with jitter, or exactly what <c>Retry-After</c> says),
    /// inside a circuit breaker that opens for 30 s when half of at least 6 calls in 30 s failed. For idempotent calls only.
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
    public async Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default)
    {
        var template = await ExecutionTemplateAsync(jobId, attempt, cancellationToken);

        // This attempt may already run: a host started it and died before recording it (a stale claim taken over).
        if (await FindActiveAsync(jobId, attempt, cancellationToken) is { } running)
        {
            return running;
        }

        var delay = options.StartRetryDelay;
        var why = "";
        var busy = false;
        TimeSpan? said = null;
        for (var tries = 1; tries <= options.MaxStartAttempts; tries++)
        {
            var (execution, retryAfter, reason, ambiguous) = await TryStartAsync(jobId, attempt, template, cancellationToken);
            if (execution is not null)
            {
                return execution;
            }

            why = reason;
            busy = !ambiguous;
            said = retryAfter;
            if (busy && (tries == options.MaxStartAttempts || retryAfter > options.MaxStartRetryAfter))
            {
                // Not now, and not soon: the job waits (releasing this handler) instead of sleeping here.
                break;
            }

            if (ambiguous)
            {
                // The start may have happened: watch the list for the run (it may show up late) before starting again.
                if (await AwaitRunAsync(jobId, attempt, cancellationToken) is { } appeared)
                {
                    return appeared;
                }
            }
            else
            {
                await Task.Delay(retryAfter ?? delay, _clock, cancellationToken);
                delay *= 2;
            }
        }

        if (busy)
        {
            // ARM kept answering "not now" (429, 409) and created nothing: the job waits for it, without spending an attempt.
            throw new EnvironmentUnavailableException($"Azure Resource Manager would not start the trainer job for {jobId} now ({options.MaxStartAttempts} tries, last: {why})", said);
        }

        throw new HttpRequestException($"Azure Resource Manager did not start the trainer job for {jobId} (attempt {attempt}) after {options.MaxStartAttempts} tries: {why}");
    }

    /// <summary>One start request: the run, or why not, when to look again, and whether a run may have been created anyway.</summary>
    private async Task<(string? Execution, TimeSpan? RetryAfter, string Reason, bool Ambiguous)> TryStartAsync(string jobId, int attempt, JsonObject template, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await SendOnceAsync(HttpMethod.Post, Url($"{JobPath}/start"), template, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            return (null, null, $"the start request failed ({e.Message}); it may have started a run", true);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, null, $"no answer to the start request within {options.RequestTimeout.TotalSeconds:F0} s; it may have started a run", true);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                return (null, RetryAfter(response), "throttled (429)", false);
            }

            if (response.StatusCode == HttpStatusCode.Conflict)
            {
                // ARM's "not now": another operation on the job is in progress; nothing was started.
                var code = ErrorCode(await response.Content.ReadAsStringAsync(cancellationToken));
                return (null, RetryAfter(response), $"conflict (409{(code is null ? "" : $" {code}")})", false);
            }

            if (response.StatusCode is >= HttpStatusCode.InternalServerError or HttpStatusCode.RequestTimeout)
            {
                return (null, RetryAfter(response), $"{(int)response.StatusCode} {response.ReasonPhrase}; it may have started a run", true);
            }

            var body = await ReadAsync(response, "start the trainer job", cancellationToken);
            if (NameOf(body) is { } name)
            {
                return (name, null, "", false);
            }

            // 202 Accepted with only a Location (ARM's documented answer): follow it, then find the run by its JOB_ID.
            var deadline = _clock.GetUtcNow() + options.StartOperationTimeout;
            if (response.Headers.Location is { } location && await FollowAsync(location, deadline, cancellationToken) is { } followed)
            {
                return (followed, null, "", false);
            }

            // Accepted, so starting again could run the job twice: if no run appears, fail, and let the claim's timeout
            // try later (which adopts the run if it has appeared by then).
            return (await AwaitRunAsync(jobId, attempt, cancellationToken)
                ?? throw new HttpRequestException($"Azure Resource Manager accepted the start of {jobId} but no run of it appeared within {options.StartOperationTimeout.TotalSeconds:F0} s."),
                null, "", false);
        }
    }

    /// <summary>ARM's error code (<c>{"error": {"code": …}}</c>), or null.</summary>
    private static string? ErrorCode(string body)
    {
        try
        {
            return JsonNode.Parse(body)?["error"]?["code"]?.GetValue<string>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Looks for a live run of this attempt until <see cref="ContainerAppsJobOptions.StartOperationTimeout"/> has passed.</summary>
    private async Task<string?> AwaitRunAsync(string jobId, int attempt, CancellationToken cancellationToken)
    {
        var deadline = _clock.GetUtcNow() + options.StartOperationTimeout;
        while (true)
        {
            if (await FindActiveAsync(jobId, attempt, cancellationToken) is { } started)
            {
                return started;
            }

            if (_clock.GetUtcNow() >= deadline)
            {
                return null;
            }

            await Task.Delay(options.StartRetryDelay, _clock, cancellationToken);
        }
    }

    private async Task<string?> FollowAsync(Uri location, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var url = location.IsAbsoluteUri ? location : new Uri(options.ArmEndpoint, location);
        while (_clock.GetUtcNow() < deadline)
        {
            using var response = await SendAsync(HttpMethod.Get, url, null, cancellationToken);
            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                return response.IsSuccessStatusCode ? NameOf(await ReadAsync(response, "follow the job start", cancellationToken)) : null;
            }

            await Task.Delay(RetryAfter(response) ?? options.StartRetryDelay, _clock, cancellationToken);
        }

        return null;
    }

    /// <summary>The job's template as a start request: each container as the job defines it, the trainer's with <c>JOB_ID</c>.</summary>
    private async Task<JsonObject> ExecutionTemplateAsync(string jobId, int attempt, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Get, Url(JobPath), null, cancellationToken);
        var job = await ReadAsync(response, $"read the trainer job {options.JobName}", cancellationToken);
        var containers = job["properties"]?["template"]?["containers"] as JsonArray;
        if (containers is not { Count: > 0 })
        {
            throw new InvalidOperationException($"The trainer job {options.JobName} has no containers in its template.");
        }

        var target = containers.Count == 1 ? containers[0] : containers.FirstOrDefault(c => c?["name"]?.GetValue<string>() == options.ContainerName);
        if (target is null)
        {
            throw new InvalidOperationException($"The trainer job {options.JobName} has no container named '{options.ContainerName}'.");
        }

        JsonArray Copy(JsonArray source) => new([.. source.OfType<JsonObject>().Select(container =>
        {
            var copy = new JsonObject();
            foreach (var field in ExecutionContainerFields)
            {
                if (container[field] is { } value)
                {
                    copy[field] = value.DeepClone();
                }
            }

            if (ReferenceEquals(container, target))
            {
                var env = new JsonArray([.. (container["env"] as JsonArray ?? []).OfType<JsonObject>()
                    .Where(e => e["name"]?.GetValue<string>() is not (ContainerAppsJobOptions.JobIdVariable or ContainerAppsJobOptions.JobAttemptVariable))
                    .Select(e => e.DeepClone())]);
                env.Add(new JsonObject { ["name"] = ContainerAppsJobOptions.JobIdVariable, ["value"] = jobId });
                env.Add(new JsonObject { ["name"] = ContainerAppsJobOptions.JobAttemptVariable, ["value"] = attempt.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                copy["env"] = env;
            }

            return (JsonNode)copy;
        })]);

        var template = new JsonObject { ["containers"] = Copy(containers) };
        if (job["properties"]?["template"]?["initContainers"] is JsonArray { Count: > 0 } init)
        {
            template["initContainers"] = Copy(init);
        }

        return template;
    }

    /// <summary>
    /// A running (or starting) execution of this job and attempt, if any — never one of an earlier attempt, which has
    /// reported its end and may still be exiting.
    /// </summary>
    private async Task<string?> FindActiveAsync(string jobId, int attempt, CancellationToken cancellationToken)
    {
        var wanted = attempt.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await foreach (var execution in ExecutionsAsync(cancellationToken))
        {
            if (IsActive(execution) && Variable(execution, ContainerAppsJobOptions.JobIdVariable) == jobId
                && Variable(execution, ContainerAppsJobOptions.JobAttemptVariable) == wanted)
            {
                return NameOf(execution);
            }
        }

        return null;
    }

    private static bool IsActive(JsonNode execution) => ActiveStates.Contains(execution["properties"]?["status"]?.GetValue<string>());

    private static string? Variable(JsonNode execution, string name) =>
        (execution["properties"]?["template"]?["containers"] as JsonArray ?? []).OfType<JsonObject>()
            .SelectMany(c => c["env"] as JsonArray ?? []).OfType<JsonObject>()
            .FirstOrDefault(e => e["name"]?.GetValue<string>() == name)?["value"]?.GetValue<string>();

    private static string? NameOf(JsonNode? node) =>
        node?["name"]?.GetValue<string>() ?? node?["id"]?.GetValue<string>()?.Split('/')[^1];

    /// <summary>Every execution of the job, following <c>nextLink</c>.</summary>
    private async IAsyncEnumerable<JsonNode> ExecutionsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Uri? url = Url($"{JobPath}/executions");
        while (url is not null)
        {
            JsonNode page;
            using (var response = await SendAsync(HttpMethod.Get, url, null, cancellationToken))
            {
                page = await ReadAsync(response, "list executions", cancellationToken);
            }

            foreach (var execution in page["value"]?.AsArray() ?? [])
            {
                if (execution is not null)
                {
                    yield return execution;
                }
            }

            url = page["nextLink"]?.GetValue<string>() is { Length: > 0 } next ? new Uri(next) : null;
        }
    }

    /// <inheritdoc />
    public async Task CancelAsync(string execution, CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Post, Url($"{JobPath}/executions/{execution}/stop"), null, cancellationToken);
        if (response.StatusCode != HttpStatusCode.NotFound)
        {
            await ReadAsync(response, $"stop execution {execution}", cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync(HttpMethod.Get, Url($"{JobPath}/executions/{execution}"), null, cancellationToken);
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
        var count = 0;
        await foreach (var execution in ExecutionsAsync(cancellationToken))
        {
            count += IsActive(execution) ? 1 : 0;
        }

        return count;
    }

    private Uri Url(string path) => new(options.ArmEndpoint, $"{path}?api-version={options.ApiVersion}");

    /// <summary>An idempotent call: retried on transient failures, inside the circuit breaker.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, JsonNode? body, CancellationToken cancellationToken)
    {
        var token = await TokenAsync(cancellationToken);
        return await _resilience.ExecuteAsync(ct => new ValueTask<HttpResponseMessage>(SendWithTimeoutAsync(method, url, body, token, ct)), cancellationToken);
    }

    /// <summary>One try, no retry: for the start request, which is not idempotent.</summary>
    private async Task<HttpResponseMessage> SendOnceAsync(HttpMethod method, Uri url, JsonNode? body, CancellationToken cancellationToken) =>
        await SendWithTimeoutAsync(method, url, body, await TokenAsync(cancellationToken), cancellationToken);

    private async Task<AccessToken> TokenAsync(CancellationToken cancellationToken) =>
        await credential.GetTokenAsync(new TokenRequestContext([new Uri(options.ArmEndpoint, ".default").ToString()]), cancellationToken);

    private async Task<HttpResponseMessage> SendWithTimeoutAsync(HttpMethod method, Uri url, JsonNode? body, AccessToken token, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        using var request = new HttpRequestMessage(method, url);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Token);
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        var response = await http.SendAsync(request, timeout.Token);
        await response.Content.LoadIntoBufferAsync(timeout.Token);
        return response;
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

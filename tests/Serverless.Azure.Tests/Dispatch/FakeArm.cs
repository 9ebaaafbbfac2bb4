using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Core;

namespace Serverless.Azure.Tests.Dispatch;

/// <summary>
/// A local HTTP server that plays Azure Resource Manager for one Container Apps job, as its REST API is documented:
/// <c>GET …/jobs/{job}</c> returns the job with its template; <c>POST …/start</c> creates an execution whose template
/// is the request's template — it <em>replaces</em> the job's, nothing is merged (an empty body runs the job's own);
/// <c>GET …/executions</c> lists executions (paged with <c>nextLink</c>), each with its status and template;
/// <c>GET …/executions/{name}</c> and <c>POST …/executions/{name}/stop</c>. How a start answers is set per start
/// (<see cref="Starts"/>): the documented 202 with the execution in its body, a 202 with only a <c>Location</c>,
/// or faults after the execution exists. Scripted answers (<see cref="Then"/>) take precedence, for plain HTTP faults.
/// </summary>
internal sealed class FakeArm : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<(int Status, string Body, string? RetryAfter)> _script = new();
    private readonly Task _loop;
    private readonly object _gate = new();
    private int _next;

    public FakeArm(string jobPath)
    {
        JobPath = jobPath;
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Endpoint = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Endpoint.ToString());
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>How a start request is answered.</summary>
    public enum StartAnswer
    {
        /// <summary>202 with <c>{id, name}</c> of the new execution.</summary>
        AcceptedWithBody,

        /// <summary>202 with only a <c>Location</c>; following it answers 202 once, then 200 with an operation status (no name).</summary>
        AcceptedWithLocationOnly,

        /// <summary>The execution is created, then the answer is a 500.</summary>
        CreatedThenServerError,

        /// <summary>The execution is created, then no answer comes for <see cref="Hang"/>.</summary>
        CreatedThenNoAnswer,

        /// <summary>429 with <c>Retry-After: 0</c>; nothing is created.</summary>
        Throttled,

        /// <summary>409 Conflict (another operation on the job is in progress) with <c>Retry-After: 1</c>; nothing is created.</summary>
        Conflict,

        /// <summary>429 with <c>Retry-After: 1</c>; nothing is created.</summary>
        ThrottledLong,

        /// <summary>500, and nothing is created.</summary>
        ServerErrorNothingCreated,

        /// <summary>403 AuthorizationFailed; nothing is created.</summary>
        Refused,
    }

    public string JobPath { get; }

    public Uri Endpoint { get; }

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>The job resource's <c>properties.template</c>, as Bicep defines it.</summary>
    public JsonObject JobTemplate { get; set; } = new() { ["containers"] = new JsonArray() };

    /// <summary>Every execution ever created: name, status, and the template it runs.</summary>
    public List<(string Name, string Status, JsonObject Template)> Executions { get; } = [];

    /// <summary>How the next starts answer, in order; then <see cref="StartAnswer.AcceptedWithBody"/>.</summary>
    public ConcurrentQueue<StartAnswer> Starts { get; } = new();

    /// <summary>How long a <see cref="StartAnswer.CreatedThenNoAnswer"/> start keeps the caller waiting.</summary>
    public TimeSpan Hang { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Executions per page of the list (ARM pages long lists).</summary>
    public int PageSize { get; set; } = 2;

    /// <summary>When the script is empty and no job route matches.</summary>
    public (int Status, string Body) Default { get; set; } = (404, """{"error": {"code": "ResourceNotFound"}}""");

    public void Then(int status, string body = "{}", string? retryAfter = null) => _script.Enqueue((status, body, retryAfter));

    /// <summary>The environment a container of execution <paramref name="name"/> starts with: exactly its template's env.</summary>
    public IReadOnlyDictionary<string, string> EnvironmentOf(string name, string container = "trainer")
    {
        lock (_gate)
        {
            var template = Executions.Single(e => e.Name == name).Template;
            var spec = template["containers"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == container)!;
            return (spec["env"] as JsonArray ?? []).ToDictionary(e => e!["name"]!.GetValue<string>(), e => e!["value"]?.GetValue<string>() ?? "");
        }
    }

    public void SetStatus(string name, string status)
    {
        lock (_gate)
        {
            var i = Executions.FindIndex(e => e.Name == name);
            Executions[i] = Executions[i] with { Status = status };
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        using var reader = new StreamReader(context.Request.InputStream);
        var body = await reader.ReadToEndAsync();
        var path = context.Request.Url!.AbsolutePath;
        var query = context.Request.Url.Query;
        Requests.Enqueue(new Recorded(context.Request.HttpMethod, path, query, context.Request.Headers["Authorization"], body, DateTime.UtcNow));
        var (status, answer, headers, delay) = _script.TryDequeue(out var scripted)
            ? (scripted.Status, scripted.Body, scripted.RetryAfter is null ? [] : new Dictionary<string, string> { ["Retry-After"] = scripted.RetryAfter }, TimeSpan.Zero)
            : Route(context.Request.HttpMethod, path, query, body);
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay);
        }

        try
        {
            context.Response.StatusCode = status;
            foreach (var (name, value) in headers)
            {
                context.Response.Headers[name] = value;
            }

            var bytes = Encoding.UTF8.GetBytes(answer);
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
        {
            // The caller gave up waiting (a timeout): nothing to answer.
        }
    }

    private (int, string, Dictionary<string, string>, TimeSpan) Route(string method, string path, string query, string body)
    {
        var none = new Dictionary<string, string>();
        lock (_gate)
        {
            if (method == "GET" && path == JobPath)
            {
                return (200, new JsonObject { ["id"] = JobPath, ["name"] = JobPath.Split('/')[^1], ["properties"] = new JsonObject { ["template"] = JobTemplate.DeepClone() } }.ToJsonString(), none, TimeSpan.Zero);
            }

            if (method == "POST" && path == JobPath + "/start")
            {
                var answer = Starts.TryDequeue(out var a) ? a : StartAnswer.AcceptedWithBody;
                switch (answer)
                {
                    case StartAnswer.Throttled:
                        return (429, """{"error": {"code": "TooManyRequests"}}""", new() { ["Retry-After"] = "0" }, TimeSpan.Zero);
                    case StartAnswer.ThrottledLong:
                        return (429, """{"error": {"code": "TooManyRequests"}}""", new() { ["Retry-After"] = "1" }, TimeSpan.Zero);
                    case StartAnswer.Conflict:
                        return (409, """{"error": {"code": "Conflict", "message": "Another operation is in progress on the job."}}""", new() { ["Retry-After"] = "1" }, TimeSpan.Zero);
                    case StartAnswer.ServerErrorNothingCreated:
                        return (500, """{"error": {"code": "InternalServerError"}}""", none, TimeSpan.Zero);
                    case StartAnswer.Refused:
                        return (403, """{"error": {"code": "AuthorizationFailed", "message": "no Microsoft.App/jobs/start/action"}}""", none, TimeSpan.Zero);
                }

                // Replace semantics: the execution runs the request's template; only an empty request runs the job's.
                var requested = string.IsNullOrWhiteSpace(body) ? null : JsonNode.Parse(body) as JsonObject;
                var template = requested is { Count: > 0 } ? (JsonObject)requested.DeepClone() : (JsonObject)JobTemplate.DeepClone();
                var name = $"{JobPath.Split('/')[^1]}-{++_next:D5}";
                Executions.Add((name, "Running", template));
                var created = new JsonObject { ["id"] = $"{JobPath}/executions/{name}", ["name"] = name }.ToJsonString();
                return answer switch
                {
                    StartAnswer.AcceptedWithLocationOnly => (202, "", new() { ["Location"] = $"{Endpoint}operations/{name}?api-version=2025-01-01" }, TimeSpan.Zero),
                    StartAnswer.CreatedThenServerError => (500, """{"error": {"code": "InternalServerError"}}""", none, TimeSpan.Zero),
                    StartAnswer.CreatedThenNoAnswer => (202, created, none, Hang),
                    _ => (202, created, none, TimeSpan.Zero),
                };
            }

            if (method == "GET" && path.StartsWith("/operations/", StringComparison.Ordinal))
            {
                var polled = Requests.Count(r => r.Path == path);
                return polled <= 1 ? (202, "", new() { ["Retry-After"] = "0" }, TimeSpan.Zero) : (200, """{"status": "Succeeded"}""", none, TimeSpan.Zero);
            }

            if (method == "GET" && path == JobPath + "/executions")
            {
                var skip = System.Web.HttpUtility.ParseQueryString(query)["$skip"] is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 0;
                var page = Executions.Skip(skip).Take(PageSize).Select(Execution).ToArray();
                var result = new JsonObject { ["value"] = new JsonArray(page) };
                if (skip + PageSize < Executions.Count)
                {
                    result["nextLink"] = $"{Endpoint.ToString().TrimEnd('/')}{JobPath}/executions?api-version=2025-01-01&$skip={skip + PageSize}";
                }

                return (200, result.ToJsonString(), none, TimeSpan.Zero);
            }

            if (path.StartsWith(JobPath + "/executions/", StringComparison.Ordinal))
            {
                var rest = path[(JobPath.Length + "/executions/".Length)..].Split('/');
                var index = Executions.FindIndex(e => e.Name == rest[0]);
                if (index < 0)
                {
                    return (404, """{"error": {"code": "ResourceNotFound"}}""", none, TimeSpan.Zero);
                }

                if (method == "POST" && rest is [_, "stop"])
                {
                    Executions[index] = Executions[index] with { Status = "Stopped" };
                    return (202, "", none, TimeSpan.Zero);
                }

                return (200, Execution(Executions[index]).ToJsonString(), none, TimeSpan.Zero);
            }
        }

        return (Default.Status, Default.Body, none, TimeSpan.Zero);
    }

    private JsonNode Execution((string Name, string Status, JsonObject Template) e) => new JsonObject
    {
        ["id"] = $"{JobPath}/executions/{e.Name}",
        ["name"] = e.Name,
        ["properties"] = new JsonObject { ["status"] = e.Status, ["template"] = e.Template.DeepClone() },
    };

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }

    internal sealed record Recorded(string Method, string Path, string Query, string? Authorization, string Body, DateTime At);
}

/// <summary>A credential that hands out a fixed token (Azure.Identity is what runs in Azure; no directory exists here).</summary>
internal sealed class FixedCredential(string token) : TokenCredential
{
    public List<string[]> Scopes { get; } = [];

    public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
    {
        lock (Scopes)
        {
            Scopes.Add(requestContext.Scopes);
        }

        return new AccessToken(token, DateTimeOffset.UtcNow.AddHours(1));
    }

    public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
        ValueTask.FromResult(GetToken(requestContext, cancellationToken));
}

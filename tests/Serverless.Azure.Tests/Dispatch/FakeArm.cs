using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure.Core;

namespace Serverless.Azure.Tests.Dispatch;

/// <summary>A local HTTP server that plays Azure Resource Manager: records every request and answers from a script.</summary>
internal sealed class FakeArm : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<(int Status, string Body, string? RetryAfter)> _script = new();
    private readonly Task _loop;

    public FakeArm()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Endpoint = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(Endpoint.ToString());
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri Endpoint { get; }

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>When the script is empty.</summary>
    public (int Status, string Body) Default { get; set; } = (200, "{}");

    public void Then(int status, string body = "{}", string? retryAfter = null) => _script.Enqueue((status, body, retryAfter));

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

            using var reader = new StreamReader(context.Request.InputStream);
            Requests.Enqueue(new Recorded(context.Request.HttpMethod, context.Request.Url!.AbsolutePath, context.Request.Url.Query,
                context.Request.Headers["Authorization"], await reader.ReadToEndAsync(), DateTime.UtcNow));
            var (status, body, retryAfter) = _script.TryDequeue(out var scripted) ? scripted : (Default.Status, Default.Body, null);
            context.Response.StatusCode = status;
            if (retryAfter is not null)
            {
                context.Response.Headers["Retry-After"] = retryAfter;
            }

            var bytes = Encoding.UTF8.GetBytes(body);
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
    }

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
        Scopes.Add(requestContext.Scopes);
        return new AccessToken(token, DateTimeOffset.UtcNow.AddHours(1));
    }

    public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
        ValueTask.FromResult(GetToken(requestContext, cancellationToken));
}

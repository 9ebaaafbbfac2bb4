using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serverless.Core.Jobs;
using Serverless.Pipeline.Api;
using Serverless.Pipeline.Hosting;

namespace Serverless.WebConsole;

/// <summary>
/// The web console <c>tune up</c> serves: ASP.NET Core minimal APIs over the same <see cref="PipelineApi"/> the
/// Functions HTTP API calls (one implementation of each operation, two hosts), a Server-Sent Events stream of live
/// updates, and a few static pages shipped inside this assembly.
/// </summary>
public sealed class ConsoleServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _feeding;

    private ConsoleServer(WebApplication app, ConsoleFeed feed, ConsoleOptions options, Uri address)
    {
        _app = app;
        Options = options;
        Address = address;
        _feeding = feed.RunAsync(TimeSpan.FromMilliseconds(500), _stop.Token);
    }

    /// <summary>The settings it runs with.</summary>
    public ConsoleOptions Options { get; }

    /// <summary>Where it listens (<c>http://127.0.0.1:7000/</c>).</summary>
    public Uri Address { get; }

    /// <summary>The URL to open: the address with the access token.</summary>
    public Uri LoginUrl => new(Address, "/?token=" + Options.Token);

    /// <summary>The URL of a page (<c>#/models/m/versions/1</c>), with the token, for printing.</summary>
    public Uri PageUrl(string fragment) => new(Address, "/?token=" + Options.Token + fragment);

    /// <summary>Starts the console over a running pipeline's stores; throws <see cref="IOException"/> when the port is taken.</summary>
    public static async Task<ConsoleServer> StartAsync(PipelineRuntime runtime, ConsoleOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        // The command that hosts the console owns Ctrl+C and SIGTERM: the default console lifetime would take the signal
        // (and cancel the process's default exit) to stop only this web host.
        builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, CallerLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(options.Listen, options.Port);
            // No server-wide cap: every body reader in PipelineApi has its own (64 KiB for JSON, 256 MiB for an upload), and
            // answers 413 itself, where Kestrel's cap would surface as a failed storage write.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.AddServerHeader = false;
        });
        var app = builder.Build();
        var feed = new ConsoleFeed(runtime);
        try
        {
            await feed.EnsureSubscriptionsAsync(cancellationToken);
            var port = options.Port;
            app.Use((context, next) => ConsoleAccess.CheckAsync(context, options, port == 0 ? context.Connection.LocalPort : port, () => next(context)));
            Map(app, runtime, feed, options);
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var address = new Uri(bound.Replace("[::]", "localhost", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        return new ConsoleServer(app, feed, options, new Uri(address.GetLeftPart(UriPartial.Authority) + "/"));
    }

    /// <summary>A host lifetime that leaves signals to the caller.</summary>
    private sealed class CallerLifetime : Microsoft.Extensions.Hosting.IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static void Map(WebApplication app, PipelineRuntime runtime, ConsoleFeed feed, ConsoleOptions options)
    {
        var api = runtime.Api;
        app.MapGet("/", () => Results.Content(Asset("index.html").Replace("{{token}}", options.Token, StringComparison.Ordinal), "text/html; charset=utf-8"));
        app.MapGet("/app.js", () => Results.Content(Asset("app.js"), "text/javascript; charset=utf-8"));
        app.MapGet("/app.css", () => Results.Content(Asset("app.css"), "text/css; charset=utf-8"));

        app.MapGet("/api/jobs", async (string? model, string? state, int? limit, CancellationToken ct) => Send(await api.ListJobsAsync(model, state, limit ?? 50, ct)));
        app.MapPost("/api/jobs", async (HttpRequest request, CancellationToken ct) => Send(await api.SubmitAsync(request.Body, ct)));
        app.MapGet("/api/jobs/{id}", async (string id, CancellationToken ct) => Send(await api.GetJobAsync(id, ct)));
        app.MapGet("/api/jobs/{id}/loss", async (string id, CancellationToken ct) => Send(await LossAsync(runtime.Jobs, feed, id, ct)));
        app.MapPost("/api/jobs/{id}/cancel", async (string id, CancellationToken ct) => Send(await api.CancelAsync(id, ct)));
        app.MapPost("/api/jobs/{id}/retry", async (string id, CancellationToken ct) => Send(await api.RetryAsync(id, ct)));

        app.MapGet("/api/models", async (CancellationToken ct) => Send(await api.ListModelsAsync(ct)));
        app.MapGet("/api/models/{name}", async (string name, CancellationToken ct) => Send(await api.GetModelAsync(name, ct)));
        app.MapGet("/api/models/{name}/versions/{version}", async (string name, string version, CancellationToken ct) => Send(await api.GetVersionAsync(name, version, ct)));
        app.MapGet("/api/models/{name}/versions/{version}/card", async (string name, string version, CancellationToken ct) =>
        {
            var found = await api.GetVersionAsync(name, version, ct);
            if (found.Status != HttpStatusCode.OK)
            {
                return Send(found);
            }

            var card = found.Body["card"]?.GetValue<string>() ?? "*This version has no model card.*";
            var html = CardRenderer.Render(card, $"/api/models/{name}/versions/{found.Body["version"]}/files/");
            return Results.Content(html, "text/html; charset=utf-8");
        });
        app.MapGet("/api/models/{name}/versions/{version}/files/{**file}", async (string name, string version, string file, CancellationToken ct) =>
        {
            var (opened, error) = await api.OpenVersionFileAsync(name, version, file, ct);
            return opened is null ? Send(error!) : Results.Stream(opened.Content, opened.ContentType, enableRangeProcessing: true);
        });

        app.MapPut("/api/datasets/{model}/{**file}", async (string model, string file, HttpRequest request, CancellationToken ct) =>
            Send(await api.UploadDatasetAsync(model, file, request.Body, request.ContentLength, ct)));
        app.MapGet("/api/specs/{model}", async (string model, CancellationToken ct) => Send(await api.GetSpecAsync(model, ct)));
        app.MapPut("/api/specs/{model}", async (string model, HttpRequest request, CancellationToken ct) => Send(await api.PutSpecAsync(model, request.Body, ct)));

        app.MapGet("/api/deadletters", async (CancellationToken ct) => Send(await api.ListDeadLettersAsync(ct)));
        app.MapPost("/api/deadletters/requeue", async (string? stage, CancellationToken ct) => Send(await api.RequeueDeadLettersAsync(stage, ct)));
        app.MapGet("/api/events", () => Results.Json(new JsonObject { ["events"] = feed.RecentEvents() }));
        app.MapGet("/api/stream", (HttpContext context) => StreamAsync(context, feed, app.Lifetime.ApplicationStopping));
    }

    /// <summary>Server-Sent Events: the live jobs now, then every change, with a heartbeat so proxies keep it open.</summary>
    private static async Task StreamAsync(HttpContext context, ConsoleFeed feed, CancellationToken stopping)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-store";
        var channel = feed.Subscribe();
        // Ends when the page closes or the console stops (so Ctrl+C never waits for open pages).
        using var both = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var stopped = both.Token;
        try
        {
            await response.WriteAsync(": connected\n\n", stopped);
            await response.Body.FlushAsync(stopped);
            while (!stopped.IsCancellationRequested)
            {
                using var heartbeat = CancellationTokenSource.CreateLinkedTokenSource(stopped);
                heartbeat.CancelAfter(TimeSpan.FromSeconds(15));
                try
                {
                    while (await channel.Reader.WaitToReadAsync(heartbeat.Token))
                    {
                        while (channel.Reader.TryRead(out var item))
                        {
                            await response.WriteAsync($"event: {item.Kind}\ndata: {item.Data}\n\n", stopped);
                        }

                        await response.Body.FlushAsync(stopped);
                    }

                    return;
                }
                catch (OperationCanceledException) when (!stopped.IsCancellationRequested)
                {
                    await response.WriteAsync(": heartbeat\n\n", stopped);
                    await response.Body.FlushAsync(stopped);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The page closed.
        }
        finally
        {
            feed.Unsubscribe(channel);
        }
    }

    /// <summary>A job's loss curves: from its metrics once trained (complete), else the points seen live so far.</summary>
    private static async Task<ApiResult> LossAsync(JobStore jobs, ConsoleFeed feed, string id, CancellationToken cancellationToken)
    {
        if (await jobs.GetAsync(id, cancellationToken) is not { } found)
        {
            return new ApiResult(HttpStatusCode.NotFound, new JsonObject { ["error"] = $"no job '{id}'." });
        }

        var metrics = found.Job.Metrics;
        if (metrics?["candidate_training"] is JsonObject candidate)
        {
            var phases = new JsonObject { ["candidate"] = Curves(candidate) };
            if (metrics["scratch_training"] is JsonObject scratch)
            {
                phases["scratch"] = Curves(scratch);
            }

            return new ApiResult(HttpStatusCode.OK, new JsonObject { ["source"] = "metrics", ["phases"] = phases });
        }

        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["source"] = "live", ["phases"] = feed.Series(id) ?? [] });

        static JsonObject Curves(JsonObject training) => new()
        {
            ["train"] = training["train_loss"]?.DeepClone() ?? new JsonArray(),
            ["validation"] = training["validation_loss"]?.DeepClone() ?? new JsonArray(),
        };
    }

    private static IResult Send(ApiResult result) => Results.Content(result.Body.ToJsonString(), "application/json", Encoding.UTF8, (int)result.Status);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Assets = new(StringComparer.Ordinal);

    /// <summary>A page file from the assembly, read once.</summary>
    private static string Asset(string name) => Assets.GetOrAdd(name, ReadAsset);

    private static string ReadAsset(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("console/" + name)
            ?? throw new InvalidOperationException($"the console page {name} is missing from the assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Raised once when the console begins to stop (the host removes what advertised it).</summary>
    public event Action? Stopping;

    /// <summary>Stops serving and the live feed.</summary>
    public async ValueTask DisposeAsync()
    {
        Stopping?.Invoke();
        try
        {
            await _stop.CancelAsync();
            await _feeding;
        }
        finally
        {
            await _app.StopAsync(CancellationToken.None);
            await _app.DisposeAsync();
            _stop.Dispose();
        }
    }
}

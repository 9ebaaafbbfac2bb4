using System.Net;
using System.Text;

namespace Serverless.WebConsole.Tests;

/// <summary>The token, the cookie, the header rule for changes, the Host check and the security headers, over real HTTP.</summary>
public sealed class ConsoleAccessTests : IAsyncLifetime
{
    private ConsoleFixture _f = null!;

    public async Task InitializeAsync() => _f = await ConsoleFixture.StartAsync(runStages: false);

    public async Task DisposeAsync() => await _f.DisposeAsync();

    private string Token => _f.Server.Options.Token;

    private string CookieHeader => $"{ConsoleAccess.Cookie(_f.Server.Address.Port)}={Token}";

    [Theory]
    [InlineData("GET", "/")]
    [InlineData("GET", "/app.js")]
    [InlineData("GET", "/api/jobs")]
    [InlineData("GET", "/api/models/m/versions/1/files/model.safetensors")]
    [InlineData("GET", "/api/stream")]
    [InlineData("PUT", "/api/datasets/m/a.jsonl")]
    [InlineData("POST", "/api/deadletters/requeue")]
    [InlineData("GET", "/no-such-page")]
    public async Task EveryRoute_WithoutTheToken_Is401_WithTheSecurityHeaders(string method, string path)
    {
        using var response = await _f.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "GET" ? null : new StringContent("{}") });
        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await response.Content.ReadAsStringAsync()).ShouldContain("open the URL");
        response.Headers.GetValues("Content-Security-Policy").Single().ShouldContain("script-src 'self'");
    }

    [Fact]
    public async Task AWrongToken_Is401()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/jobs");
        request.Headers.Add(ConsoleAccess.Header, new string('0', 64));
        (await _f.Client.SendAsync(request)).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await _f.Client.GetAsync($"/?token={Token[..^1]}")).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task TheTokenInTheUrl_BecomesAStrictHttpOnlyCookie_AndIsDroppedFromTheAddress()
    {
        using var response = await _f.Client.GetAsync($"/?token={Token}");
        response.StatusCode.ShouldBe(HttpStatusCode.Redirect);
        response.Headers.Location!.ToString().ShouldBe("/");
        var cookie = response.Headers.GetValues("Set-Cookie").Single();
        cookie.ShouldStartWith(CookieHeader);
        cookie.ShouldContain("httponly");
        cookie.ShouldContain("samesite=strict");

        using var page = new HttpRequestMessage(HttpMethod.Get, "/");
        page.Headers.Add("Cookie", CookieHeader);
        using var served = await _f.Client.SendAsync(page);
        served.StatusCode.ShouldBe(HttpStatusCode.OK);
        var html = await served.Content.ReadAsStringAsync();
        html.ShouldContain($"<meta name=\"tune-token\" content=\"{Token}\">");
        html.ShouldNotContain("<script>");   // no inline script: the CSP would refuse it anyway
        served.Headers.GetValues("Content-Security-Policy").Single().ShouldBe(ConsoleAccess.ContentSecurityPolicy);
        served.Headers.GetValues("X-Frame-Options").Single().ShouldBe("DENY");
        served.Headers.GetValues("Referrer-Policy").Single().ShouldBe("no-referrer");
    }

    [Fact]
    public async Task TheCookieAlone_Reads_ButCannotChangeAnything()
    {
        using var read = new HttpRequestMessage(HttpMethod.Get, "/api/jobs");
        read.Headers.Add("Cookie", CookieHeader);
        (await _f.Client.SendAsync(read)).StatusCode.ShouldBe(HttpStatusCode.OK);

        // What a cross-site form could send: the browser attaches a cookie (were it not strict), never a custom header.
        using var upload = new HttpRequestMessage(HttpMethod.Put, "/api/datasets/m/a.jsonl") { Content = new StringContent("{\"text\": \"x\"}") };
        upload.Headers.Add("Cookie", CookieHeader);
        using var refused = await _f.Client.SendAsync(upload);
        refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await refused.Content.ReadAsStringAsync()).ShouldContain(ConsoleAccess.Header);
        (await _f.Pipeline.Blobs.GetAsync("datasets", "m/a.jsonl")).ShouldBeNull();

        using var allowed = new HttpRequestMessage(HttpMethod.Put, "/api/datasets/m/a.jsonl") { Content = new StringContent("{\"text\": \"x\"}", Encoding.UTF8) };
        allowed.Headers.Add(ConsoleAccess.Header, Token);
        (await _f.Client.SendAsync(allowed)).StatusCode.ShouldBe(HttpStatusCode.Created);
        (await _f.Pipeline.Blobs.GetAsync("datasets", "m/a.jsonl")).ShouldNotBeNull();
    }

    [Theory]
    [InlineData("POST", "/api/jobs", "{\"model\": \"m\"}")]
    [InlineData("POST", "/api/jobs/m-1/cancel", "")]
    [InlineData("POST", "/api/jobs/m-1/retry", "")]
    [InlineData("POST", "/api/deadletters/requeue", "")]
    [InlineData("PUT", "/api/specs/m", "{\"steps\": 5}")]
    [InlineData("PUT", "/api/datasets/m/b.jsonl", "{\"text\": \"x\"}")]
    public async Task EveryChange_WithOnlyTheCookie_Is403(string method, string path, string body)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(body) };
        request.Headers.Add("Cookie", CookieHeader);
        (await _f.Client.SendAsync(request)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await _f.Pipeline.Blobs.GetAsync("datasets", "m/tune.json")).ShouldBeNull();
        (await _f.Pipeline.Blobs.GetAsync("datasets", "m/b.jsonl")).ShouldBeNull();
    }

    [Theory]
    [InlineData("attacker.example")]
    [InlineData("127.0.0.1.attacker.example")]
    [InlineData("localhost.attacker.example")]
    public async Task OnLoopback_AnotherHostName_IsRefused_EvenWithTheToken(string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/jobs");
        request.Headers.Add(ConsoleAccess.Header, Token);
        request.Headers.Host = host + ":" + _f.Server.Address.Port;
        using var response = await _f.Client.SendAsync(request);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).ShouldContain(host);
    }

    [Fact]
    public async Task AnUploadOverTheLimit_ThroughHttp_Is413_DeclaredOrChunked_AndStoresNothing()
    {
        using var declared = new HttpRequestMessage(HttpMethod.Put, "/api/datasets/m/big.txt") { Content = new ZerosContent(Serverless.Pipeline.Api.PipelineApi.MaxUploadBytes + 1, declareLength: true) };
        declared.Headers.Add(ConsoleAccess.Header, Token);
        (await _f.Client.SendAsync(declared)).StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);

        using var chunked = new HttpRequestMessage(HttpMethod.Put, "/api/datasets/m/big.txt") { Content = new ZerosContent(Serverless.Pipeline.Api.PipelineApi.MaxUploadBytes + 1, declareLength: false) };
        chunked.Headers.Add(ConsoleAccess.Header, Token);
        using var response = await _f.Client.SendAsync(chunked);
        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await response.Content.ReadAsStringAsync()).ShouldContain("nothing was stored");
        (await _f.Pipeline.Blobs.GetAsync("datasets", "m/big.txt")).ShouldBeNull();
    }

    /// <summary>A body of zeros, with or without a Content-Length (chunked).</summary>
    private sealed class ZerosContent(long length, bool declareLength) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var block = new byte[1 << 20];
            try
            {
                for (var sent = 0L; sent < length; sent += block.Length)
                {
                    await stream.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, length - sent)));
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                // The server answered and closed before the whole body was sent: the answer is what the test reads.
            }
        }

        protected override bool TryComputeLength(out long size)
        {
            size = length;
            return declareLength;
        }
    }

    [Fact]
    public async Task TheStream_SendsServerSentEvents()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/stream");
        request.Headers.Add(ConsoleAccess.Header, Token);
        using var response = await _f.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await reader.ReadLineAsync()).ShouldBe(": connected");
    }
}

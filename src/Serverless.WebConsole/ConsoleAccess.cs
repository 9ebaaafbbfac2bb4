using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Serverless.WebConsole;

/// <summary>
/// Who may use the console, as Jupyter does it: <c>tune up</c> prints a URL with a one-time token; opening it stores
/// the token in a strict, HTTP-only cookie and redirects to a clean URL. Every route without the token answers 401.
/// A change (any method but GET and HEAD) also needs the token in the <see cref="Header"/> header, which a cross-site
/// form or image cannot send, so the cookie alone never authorizes one. On loopback, the Host header must be the
/// loopback's (a DNS-rebinding page cannot reach the console under another name). Every response carries a
/// restrictive Content-Security-Policy.
/// </summary>
internal static class ConsoleAccess
{
    /// <summary>The header a change carries the token in.</summary>
    public const string Header = "X-Tune-Token";

    /// <summary>The policy: only this origin's script, style, images, audio and connections; no inline script, no frames, no plugins.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>The cookie's name; per port, as browsers share cookies across the ports of one host.</summary>
    public static string Cookie(int port) => $"tune_console_{port}";

    /// <summary>The middleware.</summary>
    public static async Task CheckAsync(HttpContext context, ConsoleOptions options, int port, Func<Task> next)
    {
        var response = context.Response;
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.XFrameOptions = "DENY";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers.CacheControl = "no-store";

        var request = context.Request;
        if (options.IsLoopback && !IsLoopbackHost(request.Host.Host))
        {
            await RefuseAsync(response, StatusCodes.Status400BadRequest, $"this console answers only to localhost or 127.0.0.1, not '{request.Host.Host}'.");
            return;
        }

        var fromQuery = Matches(request.Query["token"].ToString(), options.Token);
        var fromHeader = Matches(request.Headers[Header].ToString(), options.Token);
        var fromCookie = Matches(request.Cookies[Cookie(port)], options.Token);
        if (!(fromQuery || fromHeader || fromCookie))
        {
            await RefuseAsync(response, StatusCodes.Status401Unauthorized,
                "the console needs its access token: open the URL `tune up` printed (it carries ?token=…), or send the X-Tune-Token header.");
            return;
        }

        var reads = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
        if (!reads && !fromHeader)
        {
            await RefuseAsync(response, StatusCodes.Status403Forbidden, $"a change needs the token in the {Header} header, not only the cookie.");
            return;
        }

        if (fromQuery && reads && request.Path == "/")
        {
            // Trade the token in the URL for a cookie and drop it from the address bar (and from the history).
            response.Cookies.Append(Cookie(port), options.Token, new CookieOptions
            {
                HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", Secure = request.IsHttps, IsEssential = true,
            });
            // A fragment (#/models/…) survives the redirect: browsers keep it when the Location has none.
            response.Redirect("/");
            return;
        }

        await next();
    }

    private static bool IsLoopbackHost(string host) =>
        host == "localhost" || (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var address) && System.Net.IPAddress.IsLoopback(address));

    private static bool Matches(string? given, string token) =>
        !string.IsNullOrEmpty(given) && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(token));

    private static async Task RefuseAsync(HttpResponse response, int status, string message)
    {
        response.StatusCode = status;
        response.ContentType = "application/json";
        await response.WriteAsync(new System.Text.Json.Nodes.JsonObject { ["error"] = message }.ToJsonString());
    }
}

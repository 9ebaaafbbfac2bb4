using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Serverless.Cli.Pipeline;

/// <summary>
/// <c>{home}/console.json</c>: where the web console of the <c>tune up</c> running on this home listens, with its token
/// (readable by its owner only), so other commands on the same home (<c>tune demo</c>) can link to a page of it.
/// Removed when <c>tune up</c> stops; a file left by a killed one is recognised by its dead process id.
/// </summary>
internal static class ConsoleFile
{
    public const string Name = "console.json";

    public static void Write(string home, Uri address, string token)
    {
        var path = Path.Combine(home, Name);
        File.Delete(path);   // created anew, so it is owner-only from its first byte (the mode applies to new files)
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        stream.Write(System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["address"] = address.ToString(), ["token"] = token, ["pid"] = Environment.ProcessId }.ToJsonString()));
    }

    public static void Remove(string home) => File.Delete(Path.Combine(home, Name));

    /// <summary>The URL of <paramref name="fragment"/> (<c>#/models/demo/versions/3</c>) in the running console, or null when none runs on this home.</summary>
    public static Uri? PageUrl(string home, string fragment)
    {
        var path = Path.Combine(home, Name);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path))!;
            var pid = json["pid"]!.GetValue<int>();
            using var process = Process.GetProcessById(pid);
            if (process.HasExited)
            {
                return null;
            }

            return new Uri(new Uri(json["address"]!.GetValue<string>()), "/?token=" + json["token"]!.GetValue<string>() + fragment);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or System.Text.Json.JsonException or NullReferenceException or UriFormatException)
        {
            return null;
        }
    }

    /// <summary>The line that tells the user where to see a version: its console URL, or how to open the console.</summary>
    public static string Describe(string home, string model, int version)
    {
        var fragment = $"#/models/{model}/versions/{version}";
        return PageUrl(home, fragment) is { } url
            ? $"See {model}@{version} in the web console: {url}"
            : $"To see {model}@{version} in the web console: run `tune up --home {home}`, open the address it prints, then {fragment}.";
    }
}

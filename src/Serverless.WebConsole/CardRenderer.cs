using Markdig;
using Markdig.Renderers;
using Markdig.Syntax;
using Markdig.Syntax.Inlines;

namespace Serverless.WebConsole;

/// <summary>
/// Renders a model card (Markdown from the registry, which a dataset's owner influences) to HTML that is safe to put
/// in the page: raw HTML in the Markdown is shown as text, never run; links keep only http, https, mailto and
/// relative targets (a <c>javascript:</c> or <c>data:</c> link loses its target); relative links and images point at
/// the version's own files. The Content-Security-Policy forbids inline script besides.
/// </summary>
internal static class CardRenderer
{
    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder()
        .UseYamlFrontMatter()   // the card's Hugging Face metadata block: data for the Hub, not text for people
        .UsePipeTables()
        .UseEmphasisExtras()
        .DisableHtml()
        .Build();

    /// <summary>The card as HTML; <paramref name="filesBase"/> (<c>/api/models/m/versions/3/files/</c>) prefixes relative targets.</summary>
    public static string Render(string markdown, string filesBase)
    {
        var document = Markdown.Parse(markdown, Pipeline);
        foreach (var link in document.Descendants<LinkInline>())
        {
            link.Url = SafeUrl(link.Url, filesBase);
        }

        foreach (var link in document.Descendants<AutolinkInline>())
        {
            if (!link.IsEmail && SafeUrl(link.Url, filesBase) is not { Length: > 0 })
            {
                link.Url = "";
            }
        }

        using var writer = new StringWriter();
        var renderer = new HtmlRenderer(writer);
        Pipeline.Setup(renderer);
        renderer.Render(document);
        writer.Flush();

        // Markdig aligns table cells with style attributes, which the Content-Security-Policy refuses: classes instead.
        return writer.ToString()
            .Replace(" style=\"text-align: left;\"", " class=\"align-left\"", StringComparison.Ordinal)
            .Replace(" style=\"text-align: center;\"", " class=\"align-center\"", StringComparison.Ordinal)
            .Replace(" style=\"text-align: right;\"", " class=\"align-right\"", StringComparison.Ordinal);
    }

    /// <summary>An allowed link target, the target rebased on the version's files, or empty.</summary>
    internal static string SafeUrl(string? url, string filesBase)
    {
        var trimmed = (url ?? "").Trim();
        if (trimmed.Length == 0 || trimmed.StartsWith('#'))
        {
            return trimmed;
        }

        if (Uri.TryCreate(trimmed, UriKind.Absolute, out var absolute) && !trimmed.StartsWith('/'))
        {
            return absolute.Scheme is "http" or "https" or "mailto" ? absolute.AbsoluteUri : "";
        }

        // No scheme: a file of this version (loss.png, samples/a.wav). Anything with a colon before its first slash
        // is a scheme in some browser's eyes, so it goes too.
        var colon = trimmed.IndexOf(':', StringComparison.Ordinal);
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        if (colon >= 0 && (slash < 0 || colon < slash))
        {
            return "";
        }

        return trimmed.StartsWith('/') || trimmed.StartsWith("..", StringComparison.Ordinal) ? "" : filesBase + trimmed.TrimStart('.', '/');
    }
}

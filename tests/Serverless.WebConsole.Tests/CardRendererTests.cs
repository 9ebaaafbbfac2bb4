namespace Serverless.WebConsole.Tests;

/// <summary>The model card renderer: Markdown in, HTML that cannot run anything out.</summary>
public sealed class CardRendererTests
{
    private const string Files = "/api/models/m/versions/2/files/";

    [Fact]
    public void Render_RawHtmlAndScripts_AreShownAsText_NeverAsMarkup()
    {
        var html = CardRenderer.Render("# Card\n\n<script>alert(1)</script>\n\nText <img src=x onerror=alert(2)> and <iframe src=\"//evil\"></iframe>", Files);
        html.ShouldContain("<h1>Card</h1>");
        html.ShouldNotContain("<script");
        html.ShouldNotContain("<img src=x");
        html.ShouldNotContain("<iframe");
        html.ShouldContain("&lt;script&gt;");
    }

    [Theory]
    [InlineData("[x](javascript:alert(1))")]
    [InlineData("[x](JavaScript:alert(1))")]
    [InlineData("[x]( javascript:alert(1))")]
    [InlineData("[x](data:text/html;base64,PHNjcmlwdD4=)")]
    [InlineData("[x](vbscript:msgbox)")]
    [InlineData("![x](javascript:alert(1))")]
    [InlineData("<javascript:alert(1)>")]
    public void Render_UnsafeLinkTargets_AreDropped(string markdown)
    {
        var html = CardRenderer.Render(markdown, Files);
        html.ToLowerInvariant().ShouldNotContain("javascript:");
        html.ShouldNotContain("data:");
        html.ShouldNotContain("vbscript:");
    }

    [Fact]
    public void Render_RelativeTargets_PointAtTheVersionsFiles_AndWebLinksStay()
    {
        var html = CardRenderer.Render("![loss](loss.png) [weights](./model.safetensors) [up](../../1/model.safetensors) [hf](https://huggingface.co/gpt2)", Files);
        html.ShouldContain($"src=\"{Files}loss.png\"");
        html.ShouldContain($"href=\"{Files}model.safetensors\"");
        html.ShouldNotContain("../");
        html.ShouldContain("href=\"https://huggingface.co/gpt2\"");
    }

    [Fact]
    public void Render_Tables_AreTables()
    {
        var html = CardRenderer.Render("| model | perplexity |\n|---|---:|\n| base | 20.5 |\n| candidate | 10.6 |\n", Files);
        html.ShouldContain("<table>");
        html.ShouldContain("<td class=\"align-right\">10.6</td>");   // not a style attribute: the CSP would refuse it
        html.ShouldNotContain("style=");
    }
}

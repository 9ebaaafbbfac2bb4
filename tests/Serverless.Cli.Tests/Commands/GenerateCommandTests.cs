using System.Text.Json;

namespace Serverless.Cli.Tests.Commands;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly CliFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public void Generate_GreedyJson_IsDeterministicAndDecodesItsIds()
    {
        string[] args = ["generate", "--model", _fixture.ModelDirectory, "--prompt", "Hi", "--temperature", "0", "--max-new-tokens", "12", "--json"];
        var first = CliFixture.Run(args);
        var second = CliFixture.Run(args);

        first.ExitCode.ShouldBe(0, first.Error);
        first.Output.ShouldBe(second.Output);
        using var json = JsonDocument.Parse(first.Output);
        var ids = json.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        ids.Count.ShouldBeInRange(1, 12);
        json.RootElement.GetProperty("text").GetString().ShouldBe(new Serverless.Model.Tokenizers.ByteTokenizer().Decode(ids));
    }

    [Fact]
    public void Generate_PromptIds_AreAccepted()
    {
        var result = CliFixture.Run("generate", "--model", _fixture.ModelDirectory, "--prompt-ids", "72, 105", "--max-new-tokens", "5", "--seed", "9", "--top-k", "40", "--top-p", "0.9", "--json");
        result.ExitCode.ShouldBe(0, result.Error);
    }

    [Fact]
    public void Generate_PromptLongerThanContext_OneLineError()
    {
        var result = CliFixture.Run("generate", "--model", _fixture.ModelDirectory, "--prompt", new string('x', 40));
        result.ExitCode.ShouldNotBe(0);
        result.Error.Trim().ShouldBe("error: The prompt is 40 tokens; the model's context is 32, so it must be shorter.");
    }

    [Fact]
    public void Generate_BadPromptIds_SaysWhichOne()
    {
        var result = CliFixture.Run("generate", "--model", _fixture.ModelDirectory, "--prompt-ids", "1,x");
        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldContain("'x' is not a token id");
    }

    [Fact]
    public void Generate_NegativeTemperature_IsRefused()
    {
        var result = CliFixture.Run("generate", "--model", _fixture.ModelDirectory, "--prompt", "a", "--temperature", "-1");
        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldContain("temperature is -1");
    }
}

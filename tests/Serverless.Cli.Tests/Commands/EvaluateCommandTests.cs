using System.Text.Json;
using Serverless.Model.Data;

namespace Serverless.Cli.Tests.Commands;

public sealed class EvaluateCommandTests : IDisposable
{
    private readonly CliFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public void Evaluate_TextJson_PrintsOnlyOneJsonObject()
    {
        var text = _fixture.Write("t.txt", "The quick brown fox jumps over the lazy dog. " + new string('a', 100));
        var result = CliFixture.Run("evaluate", "--model", _fixture.ModelDirectory, "--text", text, "--block-size", "16", "--json");

        result.ExitCode.ShouldBe(0, result.Error);
        result.Error.ShouldBeEmpty();
        using var json = JsonDocument.Parse(result.Output);
        json.RootElement.GetProperty("tokens").GetInt64().ShouldBe(144, "145 byte tokens, all but the first predicted");
        var loss = json.RootElement.GetProperty("loss").GetDouble();
        loss.ShouldBeInRange(4.0, 7.0, "an untrained byte model is near ln(257) = 5.55");
        json.RootElement.GetProperty("perplexity").GetDouble().ShouldBe(Math.Exp(loss), 1e-6);
        json.RootElement.GetProperty("bits_per_byte").GetDouble().ShouldBe(loss * 144 / (Math.Log(2) * 145), 1e-6);
    }

    [Fact]
    public void Evaluate_TokensShard_HasNoBitsPerByte()
    {
        var shard = Path.Combine(_fixture.Root, "val.bin");
        using (var writer = new TokenShardWriter(shard))
        {
            writer.Write(Enumerable.Range(0, 100).Select(i => i % 257).ToArray());
            writer.Complete();
        }

        var result = CliFixture.Run("evaluate", "--model", _fixture.ModelDirectory, "--tokens", shard, "--json");
        result.ExitCode.ShouldBe(0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        json.RootElement.GetProperty("tokens").GetInt64().ShouldBe(99);
        json.RootElement.TryGetProperty("bits_per_byte", out _).ShouldBeFalse();
    }

    [Fact]
    public void Evaluate_HumanOutput_IsATable()
    {
        var text = _fixture.Write("t.txt", "hello hello hello");
        var result = CliFixture.Run("evaluate", "--model", _fixture.ModelDirectory, "--text", text);
        result.ExitCode.ShouldBe(0, result.Error);
        result.Output.ShouldContain("perplexity");
        result.Output.ShouldContain("bits per byte");
    }

    [Fact]
    public void Evaluate_MissingModelDirectory_OneLineOnStderr()
    {
        var text = _fixture.Write("t.txt", "hello");
        var result = CliFixture.Run("evaluate", "--model", "/nope/model", "--text", text);
        result.ExitCode.ShouldNotBe(0);
        result.Error.Trim().ShouldBe("error: Model directory /nope/model does not exist.");
        result.Output.ShouldBeEmpty();
    }

    [Fact]
    public void Evaluate_BadConfig_OneLineNamingTheField()
    {
        var dir = Path.Combine(_fixture.Root, "bad");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"n_embd": 30, "n_head": 4}""");
        var result = CliFixture.Run("evaluate", "--model", dir, "--text", _fixture.Write("t.txt", "hi"));
        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldContain("n_embd (30) must be a multiple of n_head (4)");
        result.Error.Trim().Split('\n').Length.ShouldBe(1);
    }

    [Fact]
    public void Evaluate_UnknownTokenizer_IsOneLine()
    {
        var dir = Path.Combine(_fixture.Root, "tok");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"vocab_size": 300, "eos_token_id": 0}""");
        var result = CliFixture.Run("evaluate", "--model", dir, "--text", _fixture.Write("t.txt", "hi"));
        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldStartWith("error: ");
        result.Error.ShouldContain("vocab_size 300 matches none we know");
    }

    [Fact]
    public void Evaluate_NeitherTextNorTokens_SaysWhatToGive()
    {
        var result = CliFixture.Run("evaluate", "--model", _fixture.ModelDirectory);
        result.ExitCode.ShouldNotBe(0);
        result.Error.Trim().ShouldBe("error: give exactly one of --text FILE or --tokens SHARD.");
    }
}

using System.Text.Json;

namespace Serverless.Cli.Tests.Commands;

public sealed class BenchCommandTests
{
    private static readonly string[] Phases = ["forward", "backward", "optimizer", "other"];

    [Fact]
    public void Bench_Json_GivesEveryFigureByName_WithMfuAgainstTheRateOfThePrecisionUsed()
    {
        var result = CliFixture.Run("bench", "--models", "demo-tiny", "--steps", "2", "--precision", "fp32", "--json");

        result.ExitCode.ShouldBe(0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        root.GetProperty("precision").GetString().ShouldBe("fp32");
        root.GetProperty("mfu_against").GetString().ShouldBe("matmul_f32_gflops");
        root.TryGetProperty("gpt2-124M", out _).ShouldBeFalse("only the chosen model is measured");
        var tiny = root.GetProperty("demo-tiny");
        string[] positive =
        [
            "train_tokens_per_second", "ms_per_step", "mfu", "generate_tokens_per_second", "optimizer_fused_ms", "optimizer_unfused_ms",
            "backward_after_zeroed_grads_ms", "backward_after_released_grads_ms", "zero_grads_ms", "matmul_floor_gflops",
        ];
        foreach (var name in positive)
        {
            tiny.GetProperty(name).GetDouble().ShouldBeGreaterThan(0, name);
        }

        var floor = tiny.GetProperty("matmul_floor_ms");
        floor.GetProperty("forward").GetDouble().ShouldBeGreaterThan(0);
        floor.GetProperty("backward").GetDouble().ShouldBeGreaterThan(0);
        tiny.TryGetProperty("step_with_weight_copies_ms", out _).ShouldBeFalse("float32 training has no low-precision copies to measure");

        var breakdown = tiny.GetProperty("breakdown_ms");
        var parts = Phases.Sum(p => breakdown.GetProperty(p).GetDouble());
        parts.ShouldBe(breakdown.GetProperty("step").GetDouble(), 0.01, "the phases add up to the step");

        // MFU is 6 · parameters · tokens/s over the fp32 rate this run measured.
        var expected = 6.0 * tiny.GetProperty("parameters").GetInt64() * tiny.GetProperty("train_tokens_per_second").GetDouble() / (root.GetProperty("matmul_f32_gflops").GetDouble() * 1e9);
        tiny.GetProperty("mfu").GetDouble().ShouldBe(expected, expected * 1e-9);
    }

    [Fact]
    public void Bench_Json_InBf16_MeasuresTheWeightCopiesBothWays()
    {
        var result = CliFixture.Run("bench", "--models", "demo-tiny", "--steps", "2", "--precision", "bf16", "--json");

        result.ExitCode.ShouldBe(0, result.Error);
        using var json = JsonDocument.Parse(result.Output);
        var tiny = json.RootElement.GetProperty("demo-tiny");
        json.RootElement.GetProperty("mfu_against").GetString().ShouldBe("matmul_bf16_gflops");
        tiny.GetProperty("step_with_weight_copies_ms").GetDouble().ShouldBeGreaterThan(0);
        tiny.GetProperty("step_with_weight_casts_ms").GetDouble().ShouldBeGreaterThan(0);
    }
}

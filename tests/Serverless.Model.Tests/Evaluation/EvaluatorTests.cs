using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Evaluation;

public class EvaluatorTests
{
    [Theory]
    [InlineData(8)]
    [InlineData(5)]
    [InlineData(32)]
    public void Evaluate_PredictsEveryTokenAfterTheFirstExactlyOnce(int blockSize)
    {
        using var model = TinyModels.Create();
        var tokens = Enumerable.Range(0, 47).Select(i => (i * 31) % 257).ToArray();

        var result = Evaluator.Evaluate(model, new ArrayTokenSource(tokens), blockSize, batchSize: 3);

        result.Tokens.ShouldBe(46);
        result.Loss.ShouldBe(ManualLoss(model, tokens, blockSize), 1e-4);
        result.Perplexity.ShouldBe(Math.Exp(result.Loss), 1e-9);
    }

    [Fact]
    public void BitsPerByte_IsTotalNatsOverBytesInBits()
    {
        var result = new EvaluationResult(Loss: 2.0, Tokens: 100, Bytes: 400);
        result.BitsPerByte!.Value.ShouldBe(2.0 * 100 / (Math.Log(2) * 400), 1e-12);
        new EvaluationResult(1, 1).BitsPerByte.ShouldBeNull();
    }

    [Fact]
    public void Evaluate_BlockLargerThanContext_IsRefused()
    {
        using var model = TinyModels.Create();
        Should.Throw<ArgumentOutOfRangeException>(() => Evaluator.Evaluate(model, new ArrayTokenSource([1, 2, 3]), blockSize: 64));
    }

    /// <summary>The definition, window by window, one at a time.</summary>
    private static double ManualLoss(Serverless.Model.Gpt2.Gpt2Model model, int[] tokens, int n)
    {
        using var noGrad = no_grad();
        double nats = 0;
        long count = 0;
        for (var start = 0; start + 1 < tokens.Length; start += n)
        {
            var window = tokens.Skip(start).Take(n + 1).Select(t => (long)t).ToArray();
            using var input = tensor(window[..^1]).unsqueeze(0);
            using var target = tensor(window[1..]);
            using var logits = model.forward(input);
            using var loss = nn.functional.cross_entropy(logits[0], target, reduction: nn.Reduction.Sum);
            nats += loss.item<float>();
            count += window.Length - 1;
        }

        return nats / count;
    }
}

using Serverless.Model.Generation;
using Serverless.Model.Gpt2;

namespace Serverless.Model.Tests.Generation;

public class TextGeneratorTests
{
    [Fact]
    public void Generate_Greedy_CachedAndUncachedGiveTheSameTokens()
    {
        using var model = TinyModels.Create(seed: 11);
        var options = new GenerationOptions { MaxNewTokens = 20, Temperature = 0 };
        var cached = TextGenerator.Generate(model, [104, 105], options with { UseCache = true });
        var uncached = TextGenerator.Generate(model, [104, 105], options with { UseCache = false });
        cached.Count.ShouldBeGreaterThan(0);
        cached.ShouldBe(uncached);
    }

    [Fact]
    public void Generate_SameSeed_SameSample_DifferentSeed_Differs()
    {
        using var model = TinyModels.Create(seed: 11);
        var options = new GenerationOptions { MaxNewTokens = 25, Temperature = 1.5, TopK = 100, TopP = 0.95 };
        var a = TextGenerator.Generate(model, [1], options with { Seed = 1 });
        var b = TextGenerator.Generate(model, [1], options with { Seed = 1 });
        var c = TextGenerator.Generate(model, [1], options with { Seed = 2 });
        a.ShouldBe(b);
        a.ShouldNotBe(c);
    }

    [Fact]
    public void Generate_TopKOne_IsGreedy()
    {
        using var model = TinyModels.Create(seed: 4);
        var greedy = TextGenerator.Generate(model, [5, 6], new GenerationOptions { MaxNewTokens = 10, Temperature = 0 });
        var topK1 = TextGenerator.Generate(model, [5, 6], new GenerationOptions { MaxNewTokens = 10, Temperature = 1, TopK = 1 });
        topK1.ShouldBe(greedy);
    }

    [Fact]
    public void Generate_StopsAtEndOfText()
    {
        using var model = TinyModels.Create();
        using (TorchSharp.torch.no_grad())
        {
            // Make end-of-text overwhelmingly likely: the final LayerNorm outputs all ones, and only
            // end-of-text's (tied) output embedding is aligned with that.
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            parameters["ln_f.weight"].zero_();
            parameters["ln_f.bias"].fill_(1);
            model.TokenEmbedding.weight![256].fill_(1);
        }

        var ids = TextGenerator.Generate(model, [1, 2], new GenerationOptions { MaxNewTokens = 10, Temperature = 0 });
        ids.ShouldBe([256]);
    }

    [Fact]
    public void Generate_PastTheContext_KeepsGoing()
    {
        using var model = TinyModels.Create();
        var ids = TextGenerator.Generate(model, [1, 2, 3], new GenerationOptions { MaxNewTokens = 80, Temperature = 1, Seed = 3 });
        ids.Count.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Generate_PromptAsLongAsContext_IsRefused()
    {
        using var model = TinyModels.Create();
        Should.Throw<ArgumentException>(() => TextGenerator.Generate(model, Enumerable.Repeat(1, 32).ToArray(), new GenerationOptions()))
            .Message.ShouldContain("the model's context is 32");
    }
}

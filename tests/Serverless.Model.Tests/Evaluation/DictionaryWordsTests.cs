using Serverless.Model.Evaluation;
using Serverless.Model.Generation;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Tests.Evaluation;

public sealed class DictionaryWordsTests
{
    private static readonly DictionaryWords Small = new(["the", "Lord", "said", "unto", "Moses", "a", "Th"]);

    [Fact]
    public void Words_KeepLettersOnlyTokensOfTwoOrMore_PunctuationStrippedFromTheirEnds()
    {
        DictionaryWords.Words("And the LORD said, \"Go!\" a 42 x-ray (unto) Moses' ofthe 3rd")
            .ShouldBe(["And", "the", "LORD", "said", "Go", "unto", "Moses", "ofthe"]);
    }

    [Fact]
    public void Measure_CountsAWordAsWrittenOrLowerCased_NotOneTheListHasOnlyCapitalized()
    {
        var share = Small.Measure(["The Lord SAID unto", "Mosss thee th lord"]);
        share.Words.ShouldBe(8);
        share.Found.ShouldBe(4, "The, Lord, SAID and unto; not th (only Th is listed) nor lord (only Lord is)");
        share.Share.ShouldBe(4 / 8.0, 1e-12);
    }

    [Fact]
    public void Measure_OfNoWords_IsZeroNotNaN()
    {
        Small.Measure(["1 2 3 ! a"]).ShouldBe(new WordShare(0, 0));
        new WordShare(0, 0).Share.ShouldBe(0);
    }

    [Fact]
    public void Load_OfAMissingList_IsNull()
    {
        DictionaryWords.Load("/nonexistent/words").ShouldBeNull();
    }

    [Fact]
    public void MeasureSamples_AreTheSamplesEachSeedGivesAlone_AndCountTheirWords()
    {
        using var model = TinyModels.Create(seed: 3);
        var tokenizer = TokenizerRegistry.Get(model.Config.TokenizerName);
        var options = new GenerationOptions { Temperature = 0.8, TopK = 40 };
        var (share, texts) = Small.MeasureSamples(model, tokenizer, options, samples: 4, length: 24);

        texts.Count.ShouldBe(4);
        for (var sample = 1; sample <= 4; sample++)
        {
            // Sample s's first document, generated on its own with its seed (1000·s), starts sample s's text.
            var alone = TextGenerator.Generate(model, [tokenizer.EndOfText], options with { MaxNewTokens = 24, Seed = sample * 1000 });
            var text = tokenizer.Decode(alone.TakeWhile(id => id != tokenizer.EndOfText));
            texts[sample - 1].ShouldStartWith(text);
        }

        share.ShouldBe(Small.Measure(texts));
        Small.MeasureSamples(model, tokenizer, options, samples: 4, length: 24).Texts.ShouldBe(texts, "the same seeds, the same samples");
    }
}

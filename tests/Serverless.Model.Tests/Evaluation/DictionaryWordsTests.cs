using Serverless.Model.Evaluation;

namespace Serverless.Model.Tests.Evaluation;

public sealed class DictionaryWordsTests
{
    private static readonly DictionaryWords Small = new(["the", "Lord", "said", "unto", "Moses", "a"]);

    [Fact]
    public void Words_KeepLettersOnlyTokensOfTwoOrMore_PunctuationStrippedFromTheirEnds()
    {
        DictionaryWords.Words("And the LORD said, \"Go!\" a 42 x-ray (unto) Moses' ofthe 3rd")
            .ShouldBe(["And", "the", "LORD", "said", "Go", "unto", "Moses", "ofthe"]);
    }

    [Fact]
    public void Measure_CountsDictionaryHitsIgnoringCase()
    {
        var share = Small.Measure(["The lord SAID unto", "Mosss thee"]);
        share.Words.ShouldBe(6);
        share.Found.ShouldBe(4);
        share.Share.ShouldBe(4 / 6.0, 1e-12);
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
}

using Serverless.Model.Evaluation;

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
}

using Serverless.Model.Data;
using Serverless.Model.Evaluation;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Media;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.Media;

public class MediaModelTests
{
    private static readonly MediaSettings Audio = MediaSettings.ForAudio(1000, 0.1) with { Classes = ["a", "b"] };

    private static Gpt2Model Tiny(MediaSettings media, int context = 16) =>
        new(Pretraining.ConfigFor("tiny", "bytes", media) with { NLayer = 1, NEmbd = 16, NHead = 2, NPositions = context }, seed: 1);

    /// <summary>Two classed clips of 40 samples: start, class, samples.</summary>
    private static ArrayTokenSource Clips() => new(
        new[] { Audio.StartToken, Audio.ClassToken(0) }.Concat(Enumerable.Range(0, 40).Select(i => i % 200))
        .Concat(new[] { Audio.StartToken, Audio.ClassToken(1) }).Concat(Enumerable.Range(0, 40).Select(i => 255 - i)).ToList());

    [Fact]
    public void ClassedAudio_TrainingWindowsAlwaysStartWithTheClipsStartAndClass()
    {
        using var model = Tiny(Audio);
        var tokens = Clips();
        var pinned = PinnedWindows.For(model.Config, tokens, blockSize: 16).ShouldNotBeNull();
        var window = new int[17];
        var seen = new HashSet<int>();
        for (var draw = 0UL; draw < 200; draw += 7)
        {
            pinned.Fill(draw * 0x9E3779B97F4A7C15UL, window);
            window[0].ShouldBe(Audio.StartToken);
            window[1].ShouldBeOneOf(Audio.ClassToken(0), Audio.ClassToken(1));
            var samples = window[2..];
            samples.ShouldAllBe(t => t < Audio.Levels);
            // The samples are a contiguous stretch of the clip the class belongs to.
            var ascending = window[1] == Audio.ClassToken(0);
            for (var i = 1; i < samples.Length; i++)
            {
                (samples[i] - samples[i - 1]).ShouldBe(ascending ? 1 : -1);
            }

            seen.Add(samples[0]);
        }

        seen.Count.ShouldBeGreaterThan(10, "offsets are drawn across the clips");
    }

    [Fact]
    public void ClassedAudio_EvaluationScoresEverySampleOnce_WithItsClassInView()
    {
        using var model = Tiny(Audio);
        var result = Evaluator.Evaluate(model, Clips(), blockSize: 16, scoredBelow: Audio.Levels);
        result.Tokens.ShouldBe(80, "two clips of 40 samples; start and class tokens are not scored");

        var plain = new ArrayTokenSource(Enumerable.Range(0, 30).Select(i => i == 0 ? Audio.StartToken : i).ToList());
        Evaluator.Evaluate(model, plain, blockSize: 16, scoredBelow: Audio.Levels).Tokens.ShouldBe(29, "without classes, plain windows");
    }

    [Fact]
    public void ClassedAudio_GenerationPastTheContext_KeepsStartAndClassFirst()
    {
        using var model = Tiny(Audio, context: 16);
        var rows = MediaGenerator.Generate(model, [0, 1], values: 60, seed: 3);
        rows.Length.ShouldBe(2);
        rows.ShouldAllBe(r => r.Length == 60 && r.All(t => t >= 0 && t < Audio.Levels));
    }

    [Fact]
    public void Evaluate_NothingToScore_IsAnError()
    {
        using var model = Tiny(MediaSettings.ForImages(4, 1, 4), context: 32);
        var onlySpecials = new ArrayTokenSource([4, 5, 4, 5, 4, 5]);
        Should.Throw<ArgumentException>(() => Evaluator.Evaluate(model, onlySpecials, blockSize: 4, scoredBelow: 4)).Message.ShouldContain("No target was scored");
    }
}

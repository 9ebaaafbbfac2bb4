using Serverless.Model.Data;
using Serverless.Model.FineTuning;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;

namespace Serverless.Model.Tests.FineTuning;

/// <summary>The data-efficiency curve: nested subsets, the smallest fraction that beats scratch, the runs and the plot.</summary>
public sealed class DataEfficiencyTests : IDisposable
{
    private const int Eot = 256;
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Documents of lengths 1..n+1 tokens after their end-of-text, each token saying which document it belongs to.</summary>
    private static ArrayTokenSource Documents(int n) =>
        new(Enumerable.Range(0, n).SelectMany(d => new[] { Eot }.Concat(Enumerable.Repeat(d % 200, d + 1))).ToList());

    private static List<int> Read(ITokenSource source)
    {
        var all = new int[source.Count];
        source.Read(0, all);
        return [.. all];
    }

    /// <summary>The documents a subset holds, by the id its tokens carry.</summary>
    private static HashSet<int> Ids(ITokenSource source) => Read(source).Where(t => t != Eot).ToHashSet();

    [Fact]
    public void Subsets_AreNested_WholeDocuments_AndTheWholeSplitAtOne()
    {
        var split = Documents(50);
        var subsets = new NestedSubsets(split, Eot, seed: 0);
        subsets.Documents.ShouldBe(50);

        var tenth = subsets.Take(0.1);
        var third = subsets.Take(0.3);
        var all = subsets.Take(1.0);
        tenth.Documents.ShouldBe(5);
        third.Documents.ShouldBe(15);
        Ids(third).IsSupersetOf(Ids(tenth)).ShouldBeTrue("the subset for 0.1 lies inside the one for 0.3");
        all.Count.ShouldBe(split.Count);
        Read(all).Order().ShouldBe(Read(split).Order(), "fraction 1 is every token of the split");

        // Whole documents: each starts with end-of-text and holds all of its tokens.
        var tokens = Read(third);
        tokens[0].ShouldBe(Eot);
        foreach (var id in Ids(third))
        {
            tokens.Count(t => t == id).ShouldBe(id + 1);
        }
    }

    [Fact]
    public void Subsets_FollowTheSplitSeed_NotTheOrderOfTheSplit()
    {
        var split = Documents(60);
        var chosen = Ids(new NestedSubsets(split, Eot, 0).Take(0.2));
        chosen.SetEquals(Ids(new NestedSubsets(split, Eot, 0).Take(0.2))).ShouldBeTrue("same seed, same subset");
        chosen.SetEquals(Ids(new NestedSubsets(split, Eot, 1).Take(0.2))).ShouldBeFalse("another seed, another subset");
        chosen.SetEquals(Enumerable.Range(0, 12)).ShouldBeFalse("not simply the first documents of the split (those are the first files given)");
    }

    [Fact]
    public void Subset_GrowsToOneTrainingBlock_AndReadsAcrossDocumentBoundaries()
    {
        var split = Documents(40);
        var subsets = new NestedSubsets(split, Eot, 3);
        var small = subsets.Take(0.01, minTokens: 100);
        small.Count.ShouldBeGreaterThanOrEqualTo(100);
        small.Documents.ShouldBeGreaterThan(1);

        var whole = Read(small);
        var window = new int[37];
        for (var start = 0; start + window.Length <= whole.Count; start += 5)
        {
            small.Read(start, window);
            window.SequenceEqual(whole.GetRange(start, window.Length)).ShouldBeTrue($"window at {start}");
        }

        Should.Throw<ArgumentOutOfRangeException>(() => small.Read(small.Count - 2, new int[3]));
        Should.Throw<ArgumentOutOfRangeException>(() => subsets.Take(0));
    }

    private static ModelScore Ppl(double perplexity) => new(Math.Log(perplexity), perplexity, null, 100);

    [Fact]
    public void SmallestFraction_IsTheFirstWhoseCandidateBeatsScratchOnAllTheData()
    {
        var curve = DataEfficiency.From([
            new CurvePoint(1, 100, 10_000, Ppl(9), Ppl(14)),
            new CurvePoint(0.1, 10, 1_000, Ppl(15), Ppl(30)),
            new CurvePoint(0.3, 30, 3_000, Ppl(13.5), Ppl(20)),
        ]);

        curve.Points.Select(p => p.Fraction).ShouldBe([0.1, 0.3, 1.0], "smallest first, the whole split last");
        curve.SmallestFractionBeatingFullScratch.ShouldBe(0.3, "13.5 < 14 (scratch on all the data); 15 is not");
        curve.Describe().ShouldContain("With 30% of the data the candidate already beats scratch trained on all of it (14.00)");

        DataEfficiency.From([new CurvePoint(1, 100, 10_000, Ppl(15), Ppl(14)), new CurvePoint(0.5, 50, 5_000, Ppl(16), Ppl(18))])
            .SmallestFractionBeatingFullScratch.ShouldBeNull();
        DataEfficiency.From([new CurvePoint(1, 100, 10_000, Ppl(13), Ppl(14)), new CurvePoint(0.5, 50, 5_000, Ppl(16), Ppl(18))])
            .Describe().ShouldContain("Only with all of the data");
    }

    [Fact]
    public void Spec_ChecksTheFractions()
    {
        new TrainingSpec { DataFractions = [0.1, 0.3, 1.0] }.Problems().ShouldBeEmpty();
        new TrainingSpec { DataFractions = [0.1, 0.3, 1.0] }.CurveFractions().ShouldBe([0.1, 0.3], "the whole split is the job's own runs");
        new TrainingSpec { DataFractions = [0, 1.5] }.Problems().ShouldContain(p => p.StartsWith("dataFractions:") && p.Contains("(0, 1]"));
        new TrainingSpec { DataFractions = [0.5], CompareWithScratch = false }.Problems().ShouldContain(p => p.StartsWith("dataFractions:") && p.Contains("compareWithScratch"));
        Should.Throw<SpecException>(() => TrainingSpec.Parse("""{"dataFractions": [0.2, -1]}""")).Message.ShouldContain("dataFractions");
        TrainingSpec.Parse("""{"dataFractions": [0.3, 0.1]}""").CurveFractions().ShouldBe([0.1, 0.3]);
    }

    [Fact]
    public void Phases_NameEveryRunOfTheCurve_SoEachResumesFromItsOwnCheckpoint()
    {
        FineTuneJob.Phases(new TrainingSpec()).ShouldBe(["candidate", "scratch"]);
        FineTuneJob.Phases(new TrainingSpec { DataFractions = [0.3, 0.1, 1] })
            .ShouldBe(["candidate", "scratch", "candidate-f0.1", "scratch-f0.1", "candidate-f0.3", "scratch-f0.3"]);
        FineTuneJob.Phases(new TrainingSpec { CompareWithScratch = false }).ShouldBe(["candidate"]);
    }

    private string Data()
    {
        var lines = Enumerable.Range(0, 60).Select(i => $"{{\"text\": \"Document {i}: {new string((char)('a' + (i % 26)), 20 + (i % 7))} ends here.\"}}");
        return _dir.Write("data.jsonl", string.Join("\n", lines) + "\n");
    }

    [Fact]
    public void Job_WithDataFractions_TrainsBothModelsOnEachSubset_ScoresThemOnTest_AndPlotsTheCurve()
    {
        using var model = TinyModels.Create();
        var baseDirectory = _dir.File("base");
        model.SavePretrained(baseDirectory);
        var spec = new TrainingSpec
        {
            Steps = 4, BatchSize = 2, BlockSize = 16, WarmupSteps = 1, EvalEvery = 2, CheckpointEvery = 2, SampleTokens = 0,
            BiasProbes = "none", DataFractions = [0.25, 1],
        };
        var phases = new List<string>();
        var report = FineTuneJob.Run(new FineTuneRequest(baseDirectory, [Data()], _dir.File("job"), spec),
            (phase, _) => phases.Add(phase));

        phases.Distinct().ShouldBe(["candidate", "scratch", "candidate-f0.25", "scratch-f0.25"]);
        var curve = report.DataEfficiency.ShouldNotBeNull();
        curve.Points.Select(p => p.Fraction).ShouldBe([0.25, 1.0]);
        var full = curve.Points[1];
        full.Candidate.ShouldBe(report.Candidate, "the whole split is the job's own candidate");
        full.Scratch.ShouldBe(report.Scratch);
        using var train = TokenShardReader.Open(_dir.File("job/prepared/train.bin"));
        full.TrainTokens.ShouldBe(train.Count);
        var quarter = curve.Points[0];
        quarter.TrainTokens.ShouldBeLessThan(train.Count / 2);
        quarter.Candidate.Tokens.ShouldBe(report.Candidate.Tokens, "every model is scored on the same test split");
        quarter.Candidate.Perplexity.ShouldNotBe(report.Candidate.Perplexity);
        Directory.Exists(_dir.File("job/checkpoints/candidate-f0.25")).ShouldBeTrue();

        var png = File.ReadAllBytes(_dir.File("job/candidate/transfer.png"));
        png[..4].ShouldBe(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' });
        File.ReadAllText(_dir.File("job/candidate/report.md")).ShouldContain("![data efficiency](transfer.png)");
        FineTuneReport.FromJson(File.ReadAllText(_dir.File("job/candidate/metrics.json"))).DataEfficiency!.Points.Count.ShouldBe(2);

        // Asking for the curve after the fact reuses the finished candidate and scratch: their runs' spec is unchanged.
        var again = FineTuneJob.Run(new FineTuneRequest(baseDirectory, [Data()], _dir.File("job"), spec with { DataFractions = [0.25, 0.5] }));
        again.Candidate.ShouldBe(report.Candidate);
        again.DataEfficiency!.Points.Select(p => p.Fraction).ShouldBe([0.25, 0.5, 1.0]);
    }
}

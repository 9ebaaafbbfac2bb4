using Serverless.Model.Data;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Tests.Data;

public class DatasetPreparerTests
{
    [Fact]
    public void Prepare_WritesThreeShardsWithEndOfTextBeforeEachDocument()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("d.txt", string.Join("\n\n", Enumerable.Range(0, 60).Select(i => $"document number {i}")));
        var preparer = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(seed: 1, validationFraction: 0.2, testFraction: 0.2));

        var result = preparer.Prepare([file], dir.File("out"));

        result.Documents.ShouldBe(60);
        (result.TrainDocuments + result.ValidationDocuments + result.TestDocuments).ShouldBe(60);
        result.ValidationDocuments.ShouldBeInRange(3, 24);
        result.TestDocuments.ShouldBeInRange(3, 24);
        using var train = TokenShardReader.Open(dir.File("out/train.bin"));
        using var val = TokenShardReader.Open(dir.File("out/val.bin"));
        using var test = TokenShardReader.Open(dir.File("out/test.bin"));
        (train.Count, val.Count, test.Count).ShouldBe((result.TrainTokens, result.ValidationTokens, result.TestTokens));
        var trainTokens = train.ReadChunks().SelectMany(c => c).ToList();
        trainTokens[0].ShouldBe(ByteTokenizer.EndOfTextId);
        trainTokens.Count(t => t == ByteTokenizer.EndOfTextId).ShouldBe((int)result.TrainDocuments);
        result.TrainBytes.ShouldBe(result.TrainTokens - result.TrainDocuments, "byte tokens: one per byte plus one end-of-text per document");
        result.TestBytes.ShouldBe(result.TestTokens - result.TestDocuments);
    }

    [Fact]
    public void Split_IsDeterministicBySeedAndContent_ThreeWays()
    {
        var docs = Enumerable.Range(0, 400).Select(i => $"doc {i}").ToList();
        var a = new DocumentSplit(42, 0.1, 0.1);
        var b = new DocumentSplit(42, 0.1, 0.1);
        var c = new DocumentSplit(43, 0.1, 0.1);
        docs.Select(a.PartOf).ShouldBe(docs.Select(b.PartOf));
        docs.Select(a.PartOf).ShouldNotBe(docs.Select(c.PartOf));
        docs.Count(d => a.PartOf(d) == SplitPart.Validation).ShouldBeInRange(20, 65);
        docs.Count(d => a.PartOf(d) == SplitPart.Test).ShouldBeInRange(20, 65);
    }

    [Fact]
    public void Prepare_ThreeDocuments_PutsOneInEachSplit()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("three.txt", "alpha\n\nbeta\n\ngamma");
        var result = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(1, 0.1, 0.1)).Prepare([file], dir.File("out"));
        (result.TrainDocuments, result.ValidationDocuments, result.TestDocuments).ShouldBe((1L, 1L, 1L));
    }

    [Fact]
    public void Prepare_SmallDatasetsThatDrawEveryPartButOne_StillFillEveryPart()
    {
        using var dir = new TempDirectory();
        for (var n = 3; n <= 12; n++)
        {
            var file = dir.Write($"d{n}.txt", string.Join("\n\n", Enumerable.Range(0, n).Select(i => $"small document {i} of {n}")));
            var result = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(5, 0.1, 0.1)).Prepare([file], dir.File($"out{n}"));
            result.TrainDocuments.ShouldBeGreaterThan(0);
            result.ValidationDocuments.ShouldBeGreaterThan(0);
            result.TestDocuments.ShouldBeGreaterThan(0);
            (result.TrainDocuments + result.ValidationDocuments + result.TestDocuments).ShouldBe(n);
        }
    }

    [Fact]
    public void Prepare_InvalidFile_ThrowsWithEveryErrorAndWritesNothing()
    {
        using var dir = new TempDirectory();
        var good = dir.Write("good.txt", "a\n\nb\n\nc");
        var bad = dir.Write("bad.jsonl", "{\"text\": 1}\nnot json\n");
        var preparer = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(1, 0.1, 0.1));

        var error = Should.Throw<DatasetValidationException>(() => preparer.Prepare([good, bad], dir.File("out")));
        error.Errors.Total.ShouldBe(2);
        error.Message.ShouldContain("bad.jsonl:1: field \"text\"");
        error.Message.ShouldContain("bad.jsonl:2: malformed JSON");
        Directory.Exists(dir.File("out")).ShouldBeFalse();
    }

    [Fact]
    public void Validate_TwoDocuments_ExplainsWhyThreeAreNeeded()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("two.txt", "just\n\ntwo");
        var errors = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(1, 0.1, 0.1)).Validate([file]);
        errors.Items.Single().Message.ShouldContain("at least 3 are needed, one each for training, validation and test");
    }
}

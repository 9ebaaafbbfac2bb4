using Serverless.Model.Data;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Tests.Data;

public class DatasetPreparerTests
{
    [Fact]
    public void Prepare_WritesBothShardsWithEndOfTextBeforeEachDocument()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("d.txt", string.Join("\n\n", Enumerable.Range(0, 40).Select(i => $"document number {i}")));
        var preparer = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(seed: 1, validationFraction: 0.2));

        var result = preparer.Prepare([file], dir.File("out"));

        result.Documents.ShouldBe(40);
        (result.TrainDocuments + result.ValidationDocuments).ShouldBe(40);
        result.ValidationDocuments.ShouldBeInRange(2, 16);
        using var train = TokenShardReader.Open(dir.File("out/train.bin"));
        using var val = TokenShardReader.Open(dir.File("out/val.bin"));
        (train.Count + val.Count).ShouldBe(result.TrainTokens + result.ValidationTokens);
        var trainTokens = train.ReadChunks().SelectMany(c => c).ToList();
        trainTokens[0].ShouldBe(ByteTokenizer.EndOfTextId);
        trainTokens.Count(t => t == ByteTokenizer.EndOfTextId).ShouldBe((int)result.TrainDocuments);
        result.TrainBytes.ShouldBe(result.TrainTokens - result.TrainDocuments, "byte tokens: one per byte plus one end-of-text per document");
    }

    [Fact]
    public void Split_IsDeterministicBySeedAndContent()
    {
        var docs = Enumerable.Range(0, 200).Select(i => $"doc {i}").ToList();
        var a = new DocumentSplit(42, 0.1);
        var b = new DocumentSplit(42, 0.1);
        var c = new DocumentSplit(43, 0.1);
        docs.Select(a.IsValidation).ShouldBe(docs.Select(b.IsValidation));
        docs.Select(a.IsValidation).ShouldNotBe(docs.Select(c.IsValidation));
        docs.Count(a.IsValidation).ShouldBeInRange(8, 35);
    }

    [Fact]
    public void Prepare_TwoDocuments_PutsOneInEachSplit()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("two.txt", "alpha\n\nbeta");
        var result = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(1, 0.1)).Prepare([file], dir.File("out"));
        result.TrainDocuments.ShouldBe(1);
        result.ValidationDocuments.ShouldBe(1);
    }

    [Fact]
    public void Prepare_InvalidFile_ThrowsWithEveryErrorAndWritesNothing()
    {
        using var dir = new TempDirectory();
        var good = dir.Write("good.txt", "a\n\nb");
        var bad = dir.Write("bad.jsonl", "{\"text\": 1}\nnot json\n");
        var preparer = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(1, 0.1));

        var error = Should.Throw<DatasetValidationException>(() => preparer.Prepare([good, bad], dir.File("out")));
        error.Errors.Total.ShouldBe(2);
        error.Message.ShouldContain("bad.jsonl:1: field \"text\"");
        error.Message.ShouldContain("bad.jsonl:2: malformed JSON");
        Directory.Exists(dir.File("out")).ShouldBeFalse();
    }

    [Fact]
    public void Validate_SingleDocument_ExplainsWhyTwoAreNeeded()
    {
        using var dir = new TempDirectory();
        var file = dir.Write("one.txt", "just one");
        var errors = new DatasetPreparer(new DatasetReader(), new ByteTokenizer(), new DocumentSplit(1, 0.1)).Validate([file]);
        errors.Items.Single().Message.ShouldContain("at least 2 are needed");
    }
}

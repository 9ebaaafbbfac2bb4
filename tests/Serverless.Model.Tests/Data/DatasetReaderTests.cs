using System.Text;
using Serverless.Model.Data;

namespace Serverless.Model.Tests.Data;

public class DatasetReaderTests
{
    private static (List<DatasetDocument> Documents, DatasetErrors Errors) Read(TempDirectory dir, string name, byte[] content, int maxDocumentBytes = 1 << 20)
    {
        var path = dir.Write(name, content);
        var errors = new DatasetErrors();
        var documents = new DatasetReader(maxDocumentBytes).Read(path, errors).ToList();
        return (documents, errors);
    }

    private static (List<DatasetDocument> Documents, DatasetErrors Errors) Read(TempDirectory dir, string name, string content) =>
        Read(dir, name, Encoding.UTF8.GetBytes(content));

    [Fact]
    public void Read_Text_SplitsDocumentsOnBlankLines()
    {
        using var dir = new TempDirectory();
        var (documents, errors) = Read(dir, "a.txt", "first line\nstill first\n\n\nsecond\r\n\nthird");
        errors.Any.ShouldBeFalse();
        documents.Select(d => d.Text).ShouldBe(["first line\nstill first\n", "second\n", "third\n"]);
        documents.Select(d => d.Line).ShouldBe([1L, 5L, 7L]);
    }

    [Fact]
    public void Read_Jsonl_AllThreeRecordShapes()
    {
        using var dir = new TempDirectory();
        var (documents, errors) = Read(dir, "a.jsonl", """
            {"text": "plain"}

            {"prompt": "Q: 2+2?\nA:", "completion": " 4"}
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
            """);
        errors.Any.ShouldBeFalse(errors.ToString());
        documents.Select(d => d.Text).ShouldBe(["plain", "Q: 2+2?\nA: 4", "System: Be brief.\nUser: Hi\nAssistant: Hello.\n"]);
        documents.Select(d => d.Line).ShouldBe([1L, 3L, 4L]);
    }

    [Fact]
    public void Read_Jsonl_CollectsEveryErrorWithLineAndField()
    {
        using var dir = new TempDirectory();
        var (documents, errors) = Read(dir, "bad.jsonl", """
            {"text": "fine"}
            {"text": 42}
            {"txet": "typo"}
            {"text": "unterminated
            [1, 2]
            {"prompt": "only a prompt"}
            {"messages": [{"role": "robot", "content": "beep"}]}
            {"messages": "hello"}
            """);
        documents.Count.ShouldBe(1);
        errors.Items.Select(e => e.ToString()).ShouldBe([
            "bad.jsonl:2: field \"text\": must be a string, found a number.",
            "bad.jsonl:3: none of the known fields: expected \"text\", \"prompt\" + \"completion\", or \"messages\"; found \"txet\".",
            errors.Items[2].ToString(),
            "bad.jsonl:5: expected a JSON object, found an array.",
            "bad.jsonl:6: field \"completion\": is missing; a prompt/completion record needs both fields.",
            "bad.jsonl:7: field \"messages[0].role\": is \"robot\"; expected \"system\", \"user\" or \"assistant\".",
            "bad.jsonl:8: field \"messages\": must be an array of {\"role\", \"content\"} objects, found a string.",
        ]);
        errors.Items[2].ToString().ShouldStartWith("bad.jsonl:4: malformed JSON at column");
    }

    [Fact]
    public void Read_EmptyFile_IsAnError()
    {
        using var dir = new TempDirectory();
        Read(dir, "e.txt", "").Errors.Items.Single().ToString().ShouldBe("e.txt: the file is empty.");
    }

    [Fact]
    public void Read_WhitespaceOnly_IsAnError()
    {
        using var dir = new TempDirectory();
        Read(dir, "w.txt", " \n\t\n  ").Errors.Items.Single().Message.ShouldContain("only whitespace");
    }

    [Fact]
    public void Read_InvalidUtf8_NamesLineAndByte()
    {
        using var dir = new TempDirectory();
        var (_, errors) = Read(dir, "u.txt", [(byte)'o', (byte)'k', (byte)'\n', (byte)'a', 0xC3, 0x28, (byte)'\n']);
        errors.Items.Single().ToString().ShouldBe("u.txt:2: invalid UTF-8 at byte 2; save the file as UTF-8.");
    }

    [Fact]
    public void Read_Utf16_SaysToSaveAsUtf8()
    {
        using var dir = new TempDirectory();
        var (_, errors) = Read(dir, "u16.txt", Encoding.Unicode.GetPreamble().Concat(Encoding.Unicode.GetBytes("hello")).ToArray());
        errors.Items.Single().Message.ShouldContain("UTF-16");
    }

    [Fact]
    public void Read_Utf8Bom_IsAccepted()
    {
        using var dir = new TempDirectory();
        var (documents, errors) = Read(dir, "bom.txt", Encoding.UTF8.GetPreamble().Concat("hello"u8.ToArray()).ToArray());
        errors.Any.ShouldBeFalse();
        documents.Single().Text.ShouldBe("hello\n");
    }

    [Fact]
    public void Read_BinaryData_IsReportedOnce()
    {
        using var dir = new TempDirectory();
        var (_, errors) = Read(dir, "b.txt", [(byte)'a', 0, 1, 2, (byte)'\n', 0, 0]);
        errors.Items.Single().ToString().ShouldBe("b.txt:1: binary data (a NUL byte at column 2); dataset files must be UTF-8 text.");
    }

    [Fact]
    public void Read_ZipRenamedTxt_IsRecognised()
    {
        using var dir = new TempDirectory();
        var (_, errors) = Read(dir, "z.txt", [(byte)'P', (byte)'K', 3, 4, 20, 0]);
        errors.Items.Single().Message.ShouldContain("zip archive");
    }

    [Fact]
    public void Read_DocumentLongerThanLimit_IsAnErrorAndLaterDocumentsStillRead()
    {
        using var dir = new TempDirectory();
        var longLine = new string('x', 5000);
        var (documents, errors) = Read(dir, "l.jsonl", Encoding.UTF8.GetBytes($"{{\"text\": \"{longLine}\"}}\n{{\"text\": \"ok\"}}\n"), maxDocumentBytes: 1024);
        errors.Items.Single().ToString().ShouldBe("l.jsonl:1: the line is longer than 1024 bytes, the longest JSONL record accepted; split the record into several.");
        documents.Single().Text.ShouldBe("ok");
    }

    [Fact]
    public void Read_TextDocumentOverTheLimit_IsCutIntoPiecesAtLineBoundaries_NothingLost()
    {
        // One sentence per line and no blank line: a common corpus shape (the Bible, one verse a line).
        using var dir = new TempDirectory();
        var lines = Enumerable.Range(0, 30).Select(i => $"{i:D3} " + new string('y', 96)).ToList();   // 100 bytes + newline each
        var text = string.Join("\n", lines) + "\n\nshort";
        var (documents, errors) = Read(dir, "t.txt", Encoding.UTF8.GetBytes(text), maxDocumentBytes: 1024);

        errors.Any.ShouldBeFalse();
        documents.Count.ShouldBe(4, "30 lines of 101 bytes in pieces of at most 1024 bytes (10 lines each), then the short document");
        documents.Take(3).ShouldAllBe(d => Encoding.UTF8.GetByteCount(d.Text) <= 1024);
        string.Concat(documents.Take(3).Select(d => d.Text)).ShouldBe(string.Join("", lines.Select(l => l + "\n")), "the pieces are the document, in order, nothing dropped");
        documents.Select(d => d.Line).ShouldBe([1L, 11L, 21L, 32L]);
        documents[^1].Text.ShouldBe("short\n");
    }

    [Fact]
    public void Read_TextLineOverTheLimit_SaysWhatToDo()
    {
        using var dir = new TempDirectory();
        var (_, errors) = Read(dir, "t.txt", Encoding.UTF8.GetBytes(new string('w', 2000) + "\nfine\n"), maxDocumentBytes: 1024);
        errors.Items.Single().ToString().ShouldBe("t.txt:1: the line is longer than 1024 bytes, the longest line accepted (a text document may be any length); break the line into shorter ones.");
    }

    [Fact]
    public void Read_UnknownExtension_IsAnError()
    {
        using var dir = new TempDirectory();
        Read(dir, "data.csv", "a,b").Errors.Items.Single().Message.ShouldContain("unsupported file type '.csv'");
    }

    [Fact]
    public void Errors_PastTheCap_AreCountedNotKept()
    {
        using var dir = new TempDirectory();
        var path = dir.Write("many.jsonl", string.Concat(Enumerable.Repeat("{\"text\": 1}\n", 250)));
        var errors = new DatasetErrors(cap: 100);
        _ = new DatasetReader().Read(path, errors).ToList();
        errors.Items.Count.ShouldBe(100);
        errors.Total.ShouldBe(250);
        errors.ToString().ShouldEndWith("… and 150 more errors");
    }
}

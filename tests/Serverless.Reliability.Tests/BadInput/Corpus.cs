using System.Text.Json;

namespace Serverless.Reliability.Tests.BadInput;

/// <summary>The bad-input corpus (<c>corpus/</c>, written by <c>tools/make-bad-input-corpus.py</c>): inputs and the error each must produce.</summary>
internal static class Corpus
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "corpus");

    /// <summary>Rows of a TSV file: every column but the last, and the expected error (the last).</summary>
    public static List<(string[] Keys, string Expected)> Table(string relative) =>
        [.. File.ReadAllLines(Path.Combine(Root, relative)).Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(c => (c[..^1], c[^1]))];

    /// <summary>A JSON-encoded cell.</summary>
    public static T Json<T>(string cell) => JsonSerializer.Deserialize<T>(cell)!;

    /// <summary>Makes the inputs too large to keep in git, described in <c>datasets/generated.tsv</c>.</summary>
    public static string Generate(string name, string directory)
    {
        var path = Path.Combine(directory, name);
        using var file = new StreamWriter(path);
        switch (name)
        {
            case "single-line-100mb.txt":
                file.Write(new string('x', 100 << 20));
                break;
            case "single-line-100mb.jsonl":
                file.Write("{\"text\": \"");
                file.Write(new string('y', 100 << 20));
                file.Write("\"}\n");
                break;
            case "tiny-lines-1e6.jsonl":
                for (var i = 0; i < 1_000_000; i++)
                {
                    file.Write("{\"text\":1}\n");
                }

                break;
            case "long-line.jsonl":
                file.Write("{\"text\": \"" + new string('z', 2 << 20) + "\"}\n");
                break;
            case "long-document.txt":
                file.Write(string.Join(' ', Enumerable.Repeat("word", 300_000)) + "\n");
                break;
            default:
                throw new ArgumentException($"no generator for {name}");
        }

        return path;
    }
}

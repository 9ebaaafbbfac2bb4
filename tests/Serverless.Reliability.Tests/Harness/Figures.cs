using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Serverless.Reliability.Tests.Harness;

/// <summary>One row of the summary table.</summary>
internal sealed record Figure(string Scenario, int Runs, long FaultsInjected, int JobsSubmitted, int JobsCompleted, int Duplicates, int Lost, TimeSpan Time, string Notes = "");

/// <summary>
/// The suite's summary table (scenario, runs, faults injected, jobs submitted, jobs completed, duplicates, lost, time),
/// written when the suite ends to <c>artifacts/reliability/summary.md</c> under the repository (printed by <c>.ci/run</c>).
/// </summary>
internal static class Figures
{
    private static readonly ConcurrentQueue<Figure> Rows = new();

    /// <summary>How many times each scenario repeats: 1, or <c>RELIABILITY_SOAK</c> for a longer soak run.</summary>
    public static int Repeats => int.TryParse(Environment.GetEnvironmentVariable("RELIABILITY_SOAK"), out var n) && n > 1 ? n : 1;

    /// <summary>The seed of the random kill moments: <c>RELIABILITY_SEED</c>, or a fixed one so a failure can be replayed.</summary>
    public static int Seed(int fixedSeed) => int.TryParse(Environment.GetEnvironmentVariable("RELIABILITY_SEED"), out var seed) ? seed : fixedSeed;

    public static void Add(Figure figure)
    {
        Rows.Enqueue(figure);
        Write();
    }

    public static Stopwatch Start() => Stopwatch.StartNew();

    public static string Table()
    {
        var text = new StringBuilder();
        text.AppendLine("| scenario | runs | faults injected | jobs submitted | jobs completed | duplicates | lost | time | notes |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in Rows.OrderBy(r => r.Scenario, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {r.Scenario} | {r.Runs} | {r.FaultsInjected} | {r.JobsSubmitted} | {r.JobsCompleted} | {r.Duplicates} | {r.Lost} | {r.Time.TotalSeconds:F1} s | {r.Notes} |");
        }

        return text.ToString();
    }

    private static void Write()
    {
        var directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "Serverless.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        var target = Path.Combine(directory ?? Path.GetTempPath(), "artifacts", "reliability");
        Directory.CreateDirectory(target);
        lock (Rows)
        {
            File.WriteAllText(Path.Combine(target, "summary.md"), "# Reliability suite\n\n" + Table());
        }
    }
}

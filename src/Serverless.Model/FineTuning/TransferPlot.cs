namespace Serverless.Model.FineTuning;

/// <summary>The data-efficiency PNG of a job: test perplexity against training tokens, candidate and scratch.</summary>
public static class TransferPlot
{
    /// <summary>The file's name in the candidate directory and in a registry version.</summary>
    public const string FileName = "transfer.png";

    /// <summary>Writes the plot to <paramref name="path"/>.</summary>
    public static void Save(string path, DataEfficiency curve)
    {
        ArgumentNullException.ThrowIfNull(curve);
        var plot = new ScottPlot.Plot();
        var tokens = curve.Points.Select(p => (double)p.TrainTokens).ToArray();
        Add(plot, tokens, curve.Points.Select(p => p.Candidate.Perplexity).ToArray(), "candidate", ScottPlot.Colors.Blue);
        Add(plot, tokens, curve.Points.Select(p => p.Scratch.Perplexity).ToArray(), "scratch", ScottPlot.Colors.OrangeRed);
        var full = plot.Add.HorizontalLine(curve.Points[^1].Scratch.Perplexity);
        full.LegendText = "scratch on all the data";
        full.Color = ScottPlot.Colors.OrangeRed.WithAlpha(0.5);
        full.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Title("Data efficiency: test perplexity vs training tokens");
        plot.XLabel("training tokens");
        plot.YLabel("test perplexity");
        plot.ShowLegend(ScottPlot.Alignment.MiddleRight);   // the lines end at the bottom and top right
        plot.SavePng(path, 900, 540);
    }

    private static void Add(ScottPlot.Plot plot, double[] x, double[] y, string label, ScottPlot.Color color)
    {
        var scatter = plot.Add.Scatter(x, y);
        scatter.LegendText = label;
        scatter.Color = color;
        scatter.LineWidth = 2;
        scatter.MarkerSize = 8;
    }
}

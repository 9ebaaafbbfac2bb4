using Serverless.Model.Training;

namespace Serverless.Model.FineTuning;

/// <summary>The loss-curve PNG of a job: train and validation loss of the candidate and the scratch baseline.</summary>
public static class LossPlot
{
    /// <summary>Writes the plot to <paramref name="path"/>.</summary>
    public static void Save(string path, TrainingResult candidate, TrainingResult? scratch)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        var plot = new ScottPlot.Plot();
        Add(plot, candidate.TrainLoss, "candidate train", ScottPlot.Colors.Blue, line: 1);
        Add(plot, candidate.ValidationLoss, "candidate validation", ScottPlot.Colors.Blue, line: 3);
        if (scratch is not null)
        {
            Add(plot, scratch.TrainLoss, "scratch train", ScottPlot.Colors.OrangeRed, line: 1);
            Add(plot, scratch.ValidationLoss, "scratch validation", ScottPlot.Colors.OrangeRed, line: 3);
        }

        plot.Title("Loss (nats/token)");
        plot.XLabel("step");
        plot.YLabel("loss");
        plot.ShowLegend();
        plot.SavePng(path, 900, 540);
    }

    private static void Add(ScottPlot.Plot plot, IReadOnlyList<LossPoint> points, string label, ScottPlot.Color color, float line)
    {
        if (points.Count == 0)
        {
            return;
        }

        var scatter = plot.Add.Scatter(points.Select(p => (double)p.Step).ToArray(), points.Select(p => p.Loss).ToArray());
        scatter.LegendText = label;
        scatter.Color = color;
        scatter.LineWidth = line;
        scatter.MarkerSize = line > 1 ? 6 : 0;
    }
}

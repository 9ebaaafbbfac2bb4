using System.Text.Json;
using Serverless.Model.Training;
using Spectre.Console;

namespace Serverless.Cli.Commands;

/// <summary>
/// Shows training progress: a live Spectre.Console bar on an interactive terminal, a plain line every tenth of the
/// run when piped, or one JSON object per step with <c>--json</c>.
/// </summary>
internal sealed class ProgressView(TextWriter output, bool json)
{
    private static readonly JsonSerializerOptions Camel = new(JsonSerializerDefaults.Web);

    private bool Interactive => !json && output == Console.Out && !Console.IsOutputRedirected;

    /// <summary>Runs <paramref name="work"/>, giving it a callback for (phase, progress).</summary>
    public T Run<T>(string title, Func<Action<string, TrainingProgress>, T> work)
    {
        if (!Interactive)
        {
            var lastDecile = new Dictionary<string, int>();
            return work((phase, p) =>
            {
                if (json)
                {
                    output.WriteLine(JsonSerializer.Serialize(new { phase, p.Step, p.TotalSteps, p.Loss, p.LearningRate, p.TokensPerSecond, eta = p.Eta.TotalSeconds, p.ValidationLoss }, Camel));
                    return;
                }

                var decile = p.Step * 10 / p.TotalSteps;
                if (p.Step == 1 || decile != lastDecile.GetValueOrDefault(phase, -1) || p.ValidationLoss is not null)
                {
                    lastDecile[phase] = decile;
                    output.WriteLine(Line(phase, p));
                }
            });
        }

        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = work((phase, p) =>
                {
                    if (!tasks.TryGetValue(phase, out var task))
                    {
                        task = tasks[phase] = context.AddTask(phase, maxValue: p.TotalSteps);
                    }

                    task.Value = p.Step;
                    task.Description = Markup.Escape(Line(phase, p));
                    if (p.Step >= p.TotalSteps)
                    {
                        task.StopTask();
                    }
                });
                foreach (var task in tasks.Values)
                {
                    task.Value = task.MaxValue;
                }
            });
        return result;
    }

    private static string Line(string phase, TrainingProgress p) =>
        $"{phase} step {p.Step}/{p.TotalSteps}  loss {p.Loss:F3}" + (p.ValidationLoss is { } v ? $"  val {v:F3}" : "") +
        $"  lr {p.LearningRate:0.###e0}  {p.TokensPerSecond:N0} tok/s  eta {p.Eta:mm\\:ss}";
}

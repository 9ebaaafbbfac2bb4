using System.Globalization;
using System.Text;
using Serverless.Core.Jobs;
using Serverless.Model.FineTuning;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Publish;

/// <summary>A Hugging Face–style model card (<c>README.md</c> with YAML front matter) for a registry version.</summary>
public static class ModelCard
{
    /// <summary>Renders the card.</summary>
    public static string Render(JobDocument job, PipelineSpec spec, FineTuneReport report)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(report);
        static string F(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);
        var card = new StringBuilder();
        card.AppendLine("---");
        card.AppendLine("library_name: transformers");
        card.AppendLine("pipeline_tag: text-generation");
        card.AppendLine($"base_model: {spec.BaseModel}");
        card.AppendLine("datasets:");
        foreach (var file in job.Dataset)
        {
            card.AppendLine($"- {file.Name}");
        }

        card.AppendLine("model-index:");
        card.AppendLine($"- name: {job.Model}");
        card.AppendLine("  results:");
        card.AppendLine("  - task:");
        card.AppendLine("      type: text-generation");
        card.AppendLine("    dataset:");
        card.AppendLine($"      name: {job.Model} {report.ScoresSplit ?? "validation"} split");
        card.AppendLine("      type: custom");
        card.AppendLine($"      split: {report.ScoresSplit ?? "validation"}");
        card.AppendLine("    metrics:");
        void Metric(string name, double? value)
        {
            if (value is { } v)
            {
                card.AppendLine($"    - type: perplexity");
                card.AppendLine($"      name: {name}");
                card.AppendLine($"      value: {F(v)}");
            }
        }

        Metric("candidate perplexity", report.Candidate.Perplexity);
        Metric("base perplexity", report.Base.Perplexity);
        Metric("scratch perplexity", report.Scratch?.Perplexity);
        Metric("champion perplexity", report.Champion?.Perplexity);
        card.AppendLine("---");
        card.AppendLine();
        card.AppendLine($"# {job.Model}");
        card.AppendLine();
        card.AppendLine($"Fine-tuned from `{spec.BaseModel}` with the `{report.Strategy}` strategy by job `{job.JobId}` (trigger: {job.Trigger}).");
        card.AppendLine("It is a GPT-2 model directory: `GPT2LMHeadModel.from_pretrained` loads it.");
        card.AppendLine();
        card.Append(report.ToMarkdown().Split('\n', 2)[1]);
        return card.ToString();
    }
}

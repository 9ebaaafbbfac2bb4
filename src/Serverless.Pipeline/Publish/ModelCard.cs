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
        card.AppendLine("## Model description").AppendLine();
        var kind = report.Modality switch
        {
            Model.Media.Modality.Image => "image model (Image GPT-style: one token per quantized sub-pixel, in raster order)",
            Model.Media.Modality.Audio => "audio model (one token per 8-bit μ-law sample, as WaveNet quantizes audio)",
            _ => "language model",
        };
        card.AppendLine($"A GPT-2 architecture {kind} ({report.CandidateTraining.Parameters:N0} parameters, `{report.Tokenizer}` tokenizer), " +
            $"fine-tuned from `{spec.BaseModel}` with the `{report.Strategy}` strategy by job `{job.JobId}` (trigger: {job.Trigger}). " +
            "It is a Hugging Face GPT-2 model directory: `GPT2LMHeadModel.from_pretrained` loads it.").AppendLine();
        card.AppendLine("## Intended uses & limitations").AppendLine();
        var what = report.Modality switch { Model.Media.Modality.Image => "Image", Model.Media.Modality.Audio => "Audio", _ => "Text" };
        card.AppendLine($"{what} generation in the style and domain of the `{job.Model}` dataset below, and as a base for further fine-tuning. " +
            "It knows only what its base model and this dataset taught it; it has not been evaluated for any task beyond predicting " +
            $"held-out {what.ToLowerInvariant()} of the same dataset, and it is not suited to decisions about people.").AppendLine();
        card.AppendLine("## Training data").AppendLine();
        card.AppendLine($"{job.Dataset.Count} file(s) from `datasets/{job.Model}/` (snapshot SHA-256 `{job.DatasetHash}`), split by document " +
            $"(split seed {spec.Training.SplitSeed}) into training ({report.TrainTokens:N0} tokens), validation ({report.ValidationTokens:N0} tokens; " +
            $"early stopping and the best weights) and test ({report.TestTokens:N0} tokens; every score below):").AppendLine();
        foreach (var file in job.Dataset)
        {
            card.AppendLine($"- `{file.Name}` ({file.Length:N0} bytes, SHA-256 `{file.Sha256}`)");
        }

        card.AppendLine();
        card.AppendLine("## Training procedure").AppendLine();
        var t = spec.Training;
        card.AppendLine("| hyperparameter | value |").AppendLine("|---|---|");
        foreach (var (name, value) in new (string, object?)[]
        {
            ("strategy", t.Strategy), ("steps", t.Steps), ("batch size", t.BatchSize), ("block size", t.BlockSize ?? (object)"model context, at most 256"),
            ("gradient accumulation", t.GradAccumulation), ("learning rate", t.LearningRate), ("warmup steps", t.WarmupSteps),
            ("schedule", "linear warmup, cosine decay"), ("optimizer", $"AdamW (β 0.9, 0.95), weight decay {t.WeightDecay}"),
            ("gradient clipping", t.GradClip), ("precision", t.Precision), ("seed", t.Seed),
        })
        {
            card.AppendLine($"| {name} | {Convert.ToString(value, CultureInfo.InvariantCulture)} |");
        }

        card.AppendLine();
        card.AppendLine($"Trained {report.CandidateTraining.StepsRun} steps (best at {report.CandidateTraining.BestStep}" +
            $"{(report.CandidateTraining.StoppedEarly ? ", stopped early" : "")}), {report.CandidateTraining.TrainableParameters:N0} parameters trained, " +
            $"{report.CandidateTraining.TokensPerSecond:N0} tokens/s.").AppendLine();
        card.AppendLine("## Evaluation results").AppendLine();
        card.Append(report.ToMarkdown().Split('\n', 2)[1]);
        card.AppendLine();
        card.AppendLine("## Bias, risks and limitations").AppendLine();
        card.AppendLine("A language model reproduces the associations of the text it was trained on, including stereotypes about groups " +
            $"of people, and fine-tuning can strengthen those of the `{job.Model}` dataset. Its output can be fluent and wrong. " +
            "Review samples before use, and measure what matters to your use (for example with minimal pairs that swap one attribute).");
        return card.ToString();
    }
}

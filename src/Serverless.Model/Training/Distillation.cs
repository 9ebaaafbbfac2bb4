using Serverless.Model.Gpt2;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>Knowledge distillation: building a student from a base model, and the distillation loss.</summary>
public static class Distillation
{
    /// <summary>
    /// alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − alpha) · CE(student, targets), the KL
    /// averaged over positions; the teacher runs without gradients.
    /// </summary>
    public static Tensor Loss(Gpt2Model student, Gpt2Model teacher, Tensor input, Tensor target, TrainingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(spec);
        var t = spec.DistillTemperature;
        Tensor teacherLogits;
        using (no_grad())
        {
            teacher.eval();
            teacherLogits = teacher.forward(input);                                      // (B, T, V)
        }

        var studentLogits = student.forward(input);                                      // (B, T, V)
        var vocab = studentLogits.shape[2];
        var logStudent = (studentLogits / t).log_softmax(-1);
        var logTeacher = (teacherLogits / t).log_softmax(-1);
        var kl = (logTeacher.exp() * (logTeacher - logStudent)).sum(-1).mean();
        var ce = nn.functional.cross_entropy(studentLogits.view(-1, vocab), target.reshape(-1));
        return kl * (spec.DistillAlpha * t * t) + ce * (1 - spec.DistillAlpha);
    }

    /// <summary>
    /// A student with <paramref name="layers"/> blocks copied from <paramref name="source"/> at evenly spaced depths
    /// (first and last included), with its embeddings and final LayerNorm.
    /// </summary>
    public static Gpt2Model Student(Gpt2Model source, int layers)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (layers < 1 || layers > source.Config.NLayer)
        {
            throw new SpecException("spec", [$"studentLayers: is {layers}; it must be between 1 and the base's n_layer ({source.Config.NLayer})."]);
        }

        var picks = Enumerable.Range(0, layers)
            .Select(i => layers == 1 ? 0 : (int)Math.Round(i * (source.Config.NLayer - 1) / (double)(layers - 1)))
            .ToArray();
        var student = new Gpt2Model(source.Config with { NLayer = layers });
        var from = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in student.named_parameters())
        {
            var sourceName = name;
            if (name.StartsWith("h.", StringComparison.Ordinal))
            {
                var dot = name.IndexOf('.', 2);
                sourceName = $"h.{picks[int.Parse(name[2..dot])]}{name[dot..]}";
            }

            parameter.copy_(from[sourceName]);
        }

        return student;
    }
}

using Serverless.Model.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Serverless.Model.Gpt2;

/// <summary>
/// A model directory in Hugging Face's layout: <c>config.json</c> + <c>model.safetensors</c>. Reads GPT-2
/// checkpoints as the hub ships them (optional <c>transformer.</c> prefix, Conv1D's [in, out] weights, causal-mask
/// buffers, optional <c>lm_head.weight</c>, F32/F16/BF16) and writes what <c>GPT2LMHeadModel.from_pretrained</c> loads.
/// </summary>
public static class ModelDirectory
{
    /// <summary>The config file's name.</summary>
    public const string ConfigFile = "config.json";

    /// <summary>The weights file's name.</summary>
    public const string WeightsFile = "model.safetensors";

    private const string Prefix = "transformer.";

    private static readonly string[] PickleWeightFiles = ["pytorch_model.bin", "model.pt", "model.bin"];

    /// <summary>Loads the model in <paramref name="directory"/>, computing in float32 whatever dtype the file holds.</summary>
    public static Gpt2Model Load(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new ModelFormatException($"Model directory {directory} does not exist.");
        }

        var config = Gpt2Config.Load(Path.Combine(directory, ConfigFile));
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(weightsPath))
        {
            var pickle = PickleWeightFiles.FirstOrDefault(f => File.Exists(Path.Combine(directory, f)));
            throw new ModelFormatException(pickle is null
                ? $"{weightsPath} does not exist: a model directory needs config.json and model.safetensors."
                : $"{directory} has {pickle} but no {WeightsFile}. Pickle weights can run code when loaded and are never loaded here; convert them to safetensors first.");
        }

        var header = SafetensorsHeader.Read(weightsPath);
        var model = new Gpt2Model(config);
        try
        {
            var plan = PlanLoad(model, header, weightsPath);
            var head = new[] { LmHead, Prefix + LmHead }.FirstOrDefault(header.Tensors.ContainsKey);
            var tensors = SafetensorsFile.Load(weightsPath, header, [.. plan.Values.Select(p => p.FileName), .. head is null ? [] : new[] { head }]);
            try
            {
                using var noGrad = no_grad();
                if (head is not null)
                {
                    CheckTiedHead(tensors[head], tensors[plan["wte.weight"].FileName], weightsPath);
                }

                foreach (var (name, parameter) in model.named_parameters())
                {
                    var (fileName, transpose) = plan[name];
                    using var asFloat = tensors[fileName].to(ScalarType.Float32);
                    using var oriented = transpose ? asFloat.t() : asFloat.alias();
                    parameter.copy_(oriented);
                }
            }
            finally
            {
                foreach (var tensor in tensors.Values)
                {
                    tensor.Dispose();
                }
            }

            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="directory"/> (created if needed): GPT-2 names without prefix,
    /// Conv1D layout, float32, no <c>lm_head.weight</c> (tied), low-rank adapters merged in, and a <c>config.json</c>
    /// Hugging Face reads.
    /// </summary>
    public static void Save(Gpt2Model model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        var tensors = model.MergedStateDict()
            .Select(p => (p.Name, (IsConv1DWeight(p.Name) ? p.Tensor.t() : p.Tensor).to(ScalarType.Float32)))
            .ToList();
        SafetensorsFile.Save(Path.Combine(directory, WeightsFile), tensors);
        model.Config.Save(Path.Combine(directory, ConfigFile));
    }

    /// <summary>GPT-2 stores these as Conv1D, [in, out]: the transpose of a Linear's [out, in].</summary>
    internal static bool IsConv1DWeight(string name) =>
        name.EndsWith(".weight", StringComparison.Ordinal)
        && (name.Contains(".attn.c_attn.", StringComparison.Ordinal) || name.Contains(".attn.c_proj.", StringComparison.Ordinal)
            || name.Contains(".mlp.c_fc.", StringComparison.Ordinal) || name.Contains(".mlp.c_proj.", StringComparison.Ordinal));

    private const string LmHead = "lm_head.weight";

    /// <summary>
    /// GPT-2 ties its output head to the token embeddings, and so does this model. A checkpoint that carries
    /// <c>lm_head.weight</c> is loaded only when that head is the embeddings (as every tied GPT-2 export is); a
    /// different head would be silently replaced by <c>wte</c>, so it is refused, saying so.
    /// </summary>
    private static void CheckTiedHead(Tensor head, Tensor wte, string path)
    {
        if (!head.shape.SequenceEqual(wte.shape))
        {
            throw new ModelFormatException($"{path}: lm_head.weight has shape [{string.Join(", ", head.shape)}], wte.weight [{string.Join(", ", wte.shape)}]: " +
                "an untied output head is not supported (GPT-2 ties lm_head to wte).");
        }

        using var a = head.to(ScalarType.Float32);
        using var b = wte.to(ScalarType.Float32);
        using var difference = (a - b).abs().max();
        var largest = difference.item<float>();
        if (largest > 0)
        {
            throw new ModelFormatException($"{path}: lm_head.weight differs from wte.weight (largest difference {largest:G4}): this checkpoint has an " +
                "untied output head, which is not supported (GPT-2 ties lm_head to wte); loading it would silently use wte instead.");
        }
    }

    /// <summary>Buffers and tied heads that GPT-2 checkpoints may carry and that we rebuild or tie ourselves.</summary>
    private static bool IsIgnorable(string name) =>
        name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal)
        || name is "lm_head.weight";

    private static Dictionary<string, (string FileName, bool Transpose)> PlanLoad(Gpt2Model model, SafetensorsHeader header, string path)
    {
        var plan = new Dictionary<string, (string, bool)>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var fileName = header.Tensors.ContainsKey(name) ? name : Prefix + name;
            var transpose = IsConv1DWeight(name);
            var expected = transpose ? parameter.shape.Reverse().ToArray() : parameter.shape;
            if (!header.Tensors.TryGetValue(fileName, out var entry))
            {
                problems.Add($"tensor '{name}' is missing (expected shape {SafetensorsHeader.FormatShape(expected)})");
                continue;
            }

            if (entry.DType is not ("F32" or "F16" or "BF16"))
            {
                problems.Add($"tensor '{fileName}' is {entry.DType}; weights must be F32, F16 or BF16");
            }
            else if (!entry.Shape.SequenceEqual(expected))
            {
                problems.Add($"tensor '{fileName}' has shape {entry.ShapeText}, expected {SafetensorsHeader.FormatShape(expected)}");
            }

            plan[name] = (fileName, transpose);
        }

        var used = plan.Values.Select(p => p.Item1).ToHashSet(StringComparer.Ordinal);
        foreach (var extra in header.Tensors.Keys.Where(k => !used.Contains(k)).Order(StringComparer.Ordinal))
        {
            var bare = extra.StartsWith(Prefix, StringComparison.Ordinal) ? extra[Prefix.Length..] : extra;
            if (!IsIgnorable(bare))
            {
                problems.Add($"tensor '{extra}' {header.Tensors[extra].ShapeText} is not part of a GPT-2 model with this config.json (n_layer {model.Config.NLayer})");
            }
        }

        if (problems.Count > 0)
        {
            var shown = problems.Take(10).ToList();
            if (problems.Count > shown.Count)
            {
                shown.Add($"… and {problems.Count - shown.Count} more");
            }

            throw new ModelFormatException($"{path} does not match its config.json:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", shown));
        }

        return plan;
    }
}

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Cronos;
using Serverless.Core.Naming;
using Serverless.Model.Training;

namespace Serverless.Pipeline.Specs;

/// <summary>When a candidate may be published.</summary>
/// <param name="MinImprovementOverBase">Required relative perplexity improvement over the base model (0.02 = 2 %). <value>0</value>.</param>
/// <param name="MustBeatChampion">Whether the candidate must have lower perplexity than the current champion. <value>true</value>.</param>
/// <param name="MaxBiasShift">
/// The largest change of any bias-probe group's mean log-likelihood difference (nats) fine-tuning may cause; null: no
/// limit. <value>null</value>.
/// </param>
public sealed record GateSpec(double MinImprovementOverBase = 0, bool MustBeatChampion = true, double? MaxBiasShift = null);

/// <summary>Retraining on a schedule.</summary>
/// <param name="Cron">A cron expression (5 fields), e.g. <c>0 3 * * *</c>; null for no schedule.</param>
/// <param name="OnlyIfDataChanged">Skip an occurrence when the dataset equals the last job's. <value>true</value>.</param>
/// <param name="TimeZone">The IANA time zone the cron expression is read in (<c>Europe/Berlin</c>). <value>UTC</value>.
/// Across daylight-saving changes a skipped time runs once just after the gap and a repeated time runs once.</param>
public sealed record RetrainSpec(string? Cron = null, bool OnlyIfDataChanged = true, string? TimeZone = null)
{
    /// <summary>The time zone, UTC when none is given.</summary>
    public TimeZoneInfo Zone() => TimeZone is { } id ? TimeZoneInfo.FindSystemTimeZoneById(id) : TimeZoneInfo.Utc;
}

/// <summary>
/// A model's spec (<c>datasets/{model}/tune.json</c>): the training fields of <see cref="TrainingSpec"/> plus the
/// pipeline's: <c>baseModel</c>, <c>gate</c>, <c>retrain</c>, <c>debounceSeconds</c>, <c>maxAttempts</c>, <c>keepCheckpoints</c>.
/// </summary>
public sealed record PipelineSpec
{
    private static readonly string[] PipelineFields = ["baseModel", "gate", "retrain", "debounceSeconds", "maxAttempts", "keepCheckpoints"];

    /// <summary>A name under <c>base-models/</c>, or a registry reference <c>model@alias</c> / <c>model@3</c>. <value>demo-base</value>.</summary>
    public string BaseModel { get; init; } = "demo-base";

    /// <summary>The publishing gate.</summary>
    public GateSpec Gate { get; init; } = new();

    /// <summary>Scheduled retraining.</summary>
    public RetrainSpec Retrain { get; init; } = new();

    /// <summary>Uploads wait this long before a job starts, so a burst of files becomes one job. <value>2</value>.</summary>
    public double DebounceSeconds { get; init; } = 2;

    /// <summary>Trainer runs a job may take (the first and its retries after crashes). <value>3</value>.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Complete checkpoints kept in storage per training phase (older ones are removed once a newer one is complete). <value>2</value>.</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>The training recipe.</summary>
    public TrainingSpec Training { get; init; } = new();

    /// <summary>The spec as submitted, for the job document.</summary>
    public JsonObject Source { get; init; } = [];

    /// <summary>SHA-256 of the canonical spec, part of the job id.</summary>
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
        JsonSerializer.Serialize(new { BaseModel, Gate, Retrain, Training = Training.ToJson() }))))[..16];

    /// <summary>Binds and validates a spec; throws <see cref="SpecException"/> naming every bad field.</summary>
    public static PipelineSpec Parse(JsonObject? json, string source)
    {
        json ??= [];
        var problems = new List<string>();
        var training = new JsonObject();
        foreach (var (key, value) in json)
        {
            if (!PipelineFields.Contains(key))
            {
                training[key] = value?.DeepClone();
            }
        }

        TrainingSpec trainingSpec;
        try
        {
            trainingSpec = TrainingSpec.Parse(training.ToJsonString(), source);
        }
        catch (SpecException e)
        {
            problems.AddRange(e.Problems);
            trainingSpec = new TrainingSpec();
        }

        var spec = new PipelineSpec { Training = trainingSpec, Source = (JsonObject)json.DeepClone() };
        try
        {
            spec = spec with
            {
                BaseModel = json["baseModel"]?.GetValue<string>() ?? spec.BaseModel,
                DebounceSeconds = json["debounceSeconds"]?.GetValue<double>() ?? spec.DebounceSeconds,
                MaxAttempts = json["maxAttempts"]?.GetValue<int>() ?? spec.MaxAttempts,
                KeepCheckpoints = json["keepCheckpoints"]?.GetValue<int>() ?? spec.KeepCheckpoints,
                Gate = json["gate"]?.Deserialize<GateSpec>(Json) ?? spec.Gate,
                Retrain = json["retrain"]?.Deserialize<RetrainSpec>(Json) ?? spec.Retrain,
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            problems.Add($"baseModel/gate/retrain/debounceSeconds/maxAttempts/keepCheckpoints: a value has the wrong type ({e.Message.Split(" Path:")[0]})");
        }

        if (string.IsNullOrWhiteSpace(spec.BaseModel))
        {
            problems.Add("baseModel: must name a model under base-models/ or a registry reference model@alias.");
        }
        else if (spec.BaseModel.Split('@') is var parts && (parts.Length > 2 || !BlobNames.IsModel(parts[0]) || (parts.Length == 2 && !BlobNames.IsModel(parts[1]))))
        {
            problems.Add($"baseModel: '{spec.BaseModel}' is not a model name (1–64 of a–z, 0–9, '-', '_', '.') or a registry reference name@alias / name@version.");
        }

        if (!(spec.DebounceSeconds is >= 0 and <= 3600))
        {
            problems.Add($"debounceSeconds: is {spec.DebounceSeconds}; it must be between 0 and 3600.");
        }

        if (spec.MaxAttempts is < 1 or > 20)
        {
            problems.Add($"maxAttempts: is {spec.MaxAttempts}; it must be between 1 and 20.");
        }

        if (spec.KeepCheckpoints is < 1 or > 100)
        {
            problems.Add($"keepCheckpoints: is {spec.KeepCheckpoints}; it must be between 1 and 100.");
        }

        if (spec.Gate.MaxBiasShift is { } shift && !(shift >= 0 && double.IsFinite(shift)))
        {
            problems.Add($"gate.maxBiasShift: is {shift}; it must be a finite number of nats, 0 or more.");
        }

        if (!(spec.Gate.MinImprovementOverBase is >= -1 and < 1))
        {
            problems.Add($"gate.minImprovementOverBase: is {spec.Gate.MinImprovementOverBase}; it must be in [-1, 1).");
        }

        if (spec.Retrain.Cron is { } cron)
        {
            try
            {
                CronExpression.Parse(cron);
            }
            catch (CronFormatException e)
            {
                problems.Add($"retrain.cron: '{cron}' is not a cron expression ({e.Message}).");
            }
        }

        if (spec.Retrain.TimeZone is { } zone)
        {
            try
            {
                spec.Retrain.Zone();
            }
            catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException)
            {
                problems.Add($"retrain.timeZone: '{zone}' is not a known time zone; use an IANA name such as 'Europe/Berlin' or 'America/New_York'.");
            }
        }

        return problems.Count == 0 ? spec : throw new SpecException(source, problems);
    }

    /// <summary>Parses spec text (tune.json).</summary>
    public static PipelineSpec Parse(string text, string source)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new SpecException(source, [$"not valid JSON: {e.Message}"]);
        }

        return node is JsonObject obj ? Parse(obj, source) : throw new SpecException(source, ["must be a JSON object of spec fields."]);
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };
}

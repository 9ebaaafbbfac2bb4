using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Serverless.Core.Contracts;

/// <summary>
/// A CloudEvents 1.0 JSON document (structured mode): <c>specversion</c>, <c>id</c>, <c>source</c>, <c>type</c>,
/// <c>subject</c> (the model), <c>time</c>, <c>datacontenttype</c>, <c>data</c>, and the W3C <c>traceparent</c>
/// extension so one trace spans every stage.
/// </summary>
public sealed record CloudEvent
{
    /// <summary>Always <c>1.0</c>.</summary>
    [JsonPropertyName("specversion")] public string SpecVersion { get; init; } = "1.0";

    /// <summary>Unique per event; stable across redeliveries and re-publishing, so subscribers can de-duplicate.</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }

    /// <summary>The stage that produced it (<c>/serverless/publish</c>).</summary>
    [JsonPropertyName("source")] public required string Source { get; init; }

    /// <summary>The event type: the record's name (<c>ModelPublished</c>).</summary>
    [JsonPropertyName("type")] public required string Type { get; init; }

    /// <summary>The model name.</summary>
    [JsonPropertyName("subject")] public required string Subject { get; init; }

    /// <summary>When it happened.</summary>
    [JsonPropertyName("time")] public required DateTimeOffset Time { get; init; }

    /// <summary>Always <c>application/json</c>.</summary>
    [JsonPropertyName("datacontenttype")] public string DataContentType { get; init; } = "application/json";

    /// <summary>W3C trace context of the producing activity, if any.</summary>
    [JsonPropertyName("traceparent")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; init; }

    /// <summary>The event record as JSON.</summary>
    [JsonPropertyName("data")] public required JsonNode Data { get; init; }

    /// <summary>JSON options for every document of this project: camelCase, enums as strings.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        WriteIndented = false,
    };

    /// <summary>Wraps <paramref name="data"/>; <paramref name="id"/> should be derived from what makes the event unique.</summary>
    public static CloudEvent Create<T>(T data, string id, string source, DateTimeOffset time) where T : IPipelineEvent =>
        new()
        {
            Id = id,
            Source = source,
            Type = typeof(T).Name,
            Subject = data.Model,
            Time = time,
            TraceParent = Activity.Current?.Id,
            Data = JsonSerializer.SerializeToNode(data, JsonOptions)!,
        };

    /// <summary>The data as <typeparamref name="T"/>; throws <see cref="InvalidDataException"/> if the type does not match or data is missing.</summary>
    public T DataAs<T>() where T : IPipelineEvent
    {
        if (Type != typeof(T).Name)
        {
            throw new InvalidDataException($"Event {Id} is a '{Type}', not a '{typeof(T).Name}'.");
        }

        try
        {
            return Data.Deserialize<T>(JsonOptions) ?? throw new InvalidDataException($"Event {Id} ({Type}) has no data.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Event {Id} ({Type}) has data that does not match: {e.Message}", e);
        }
    }

    /// <summary>The structured-mode JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses a structured-mode JSON document; throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static CloudEvent Parse(string json)
    {
        try
        {
            var e = JsonSerializer.Deserialize<CloudEvent>(json, JsonOptions) ?? throw new InvalidDataException("The event is JSON null.");
            var missing = new[] { ("id", e.Id), ("source", e.Source), ("type", e.Type) }.FirstOrDefault(a => string.IsNullOrEmpty(a.Item2)).Item1;
            if (missing is not null)
            {
                throw new InvalidDataException($"The event has no '{missing}' (CloudEvents requires id, source, type and specversion).");
            }

            if (e.Data is null)
            {
                throw new InvalidDataException($"Event {e.Id} ({e.Type}) has no 'data'.");
            }

            return e.SpecVersion == "1.0" ? e : throw new InvalidDataException($"Unsupported CloudEvents specversion '{e.SpecVersion}'.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Not a CloudEvents JSON document: {e.Message}", e);
        }
    }
}

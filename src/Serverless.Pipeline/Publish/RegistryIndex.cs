using System.Text.Json.Serialization;

namespace Serverless.Pipeline.Publish;

/// <summary>One version in a model's registry index.</summary>
/// <param name="Version">1, 2, 3…</param>
/// <param name="JobId">The job that produced it (a job yields at most one version).</param>
/// <param name="State"><c>pending</c> while its files are copied, then <c>ready</c>.</param>
/// <param name="CreatedAt">When it was claimed.</param>
/// <param name="Perplexity">The candidate's validation perplexity.</param>
public sealed record RegistryVersion(int Version, string JobId, string State, DateTimeOffset CreatedAt, double Perplexity);

/// <summary>
/// <c>model-registry/{model}/index.json</c>, the model's head: the newest versions, every pending one and each alias's
/// target, and the aliases (<c>latest</c>, <c>champion</c>). Older ready versions leave the head for immutable entries
/// (<c>{model}/version-{v:D10}.json</c>), so the head, rewritten on every publish, stays the same size however many
/// versions a model has. <see cref="ModelRegistry.ListVersionsAsync"/> reads both.
/// </summary>
/// <param name="Model">The model.</param>
/// <param name="Versions">The versions in the head, oldest first.</param>
/// <param name="Aliases">Alias → version.</param>
public sealed record RegistryIndex(string Model, IReadOnlyList<RegistryVersion> Versions, IReadOnlyDictionary<string, int> Aliases)
{
    /// <summary>The highest version ever claimed (0: none). Heads written before it existed hold every version, so it is derived from them.</summary>
    public int Latest { get; init; }

    /// <summary>How many versions are ready, in the head and out of it (as written; readers use <see cref="Ready"/>).</summary>
    public int ReadyCount { get; init; }

    /// <summary><see cref="Latest"/>, or for a head written before it existed, the highest version it lists (the newest is always in the head).</summary>
    [JsonIgnore]
    public int HighestVersion => Math.Max(Latest, Versions.Count == 0 ? 0 : Versions.Max(v => v.Version));

    /// <summary>
    /// Ready versions: the head's, plus every number up to <see cref="HighestVersion"/> that is not in the head — only a
    /// ready version ever leaves it (to its entry), so that count is exact whatever wrote the head.
    /// </summary>
    [JsonIgnore]
    public int Ready => Versions.Count(v => v.State == "ready") + (HighestVersion - Versions.Count);

    /// <summary>Whether versions older than the head's exist (in entries).</summary>
    [JsonIgnore]
    public bool HasOlder => Versions.Count < HighestVersion;

    /// <summary>This head with <see cref="Latest"/> and <see cref="ReadyCount"/> filled in, as every head written now has them.</summary>
    public RegistryIndex Normalized() => this with { Latest = HighestVersion, ReadyCount = Ready };
}

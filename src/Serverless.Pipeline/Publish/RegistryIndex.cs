namespace Serverless.Pipeline.Publish;

/// <summary>One version in a model's registry index.</summary>
/// <param name="Version">1, 2, 3…</param>
/// <param name="JobId">The job that produced it (a job yields at most one version).</param>
/// <param name="State"><c>pending</c> while its files are copied, then <c>ready</c>.</param>
/// <param name="CreatedAt">When it was claimed.</param>
/// <param name="Perplexity">The candidate's validation perplexity.</param>
public sealed record RegistryVersion(int Version, string JobId, string State, DateTimeOffset CreatedAt, double Perplexity);

/// <summary><c>model-registry/{model}/index.json</c>: the versions and the aliases (<c>latest</c>, <c>champion</c>).</summary>
/// <param name="Model">The model.</param>
/// <param name="Versions">Every version, oldest first.</param>
/// <param name="Aliases">Alias → version.</param>
public sealed record RegistryIndex(string Model, IReadOnlyList<RegistryVersion> Versions, IReadOnlyDictionary<string, int> Aliases);

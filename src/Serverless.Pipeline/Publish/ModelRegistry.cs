using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Publish;

/// <summary>What publishing produced.</summary>
/// <param name="Version">The version number.</param>
/// <param name="Files">File name → SHA-256.</param>
/// <param name="Aliases">Aliases pointing at this version.</param>
public sealed record PublishedVersion(int Version, IReadOnlyDictionary<string, string> Files, IReadOnlyList<string> Aliases);

/// <summary>
/// The model registry in blob storage. A version is claimed in <c>index.json</c> first (conditional write), then its
/// files are copied (never overwritten), then <c>manifest.json</c> (SHA-256 of every file, lineage) and the model card
/// are written, then the index marks it ready and moves the aliases — each step idempotent, so a publish interrupted
/// anywhere and repeated ends with exactly one version per job, and racing publishers get distinct versions.
/// </summary>
/// <remarks>
/// <c>index.json</c> is a head of constant size: the newest <c>headVersions</c> ready versions, every pending one and
/// each alias's target. A ready version that leaves it is first written to its immutable entry
/// <c>{model}/version-{v:D10}.json</c>, and a claimed version is recorded under its job
/// (<c>{model}/job-{jobId}.json</c>), so a publish costs the same at version 10 and at version 10,000 and a job still
/// yields at most one version however far its version has moved out of the head. A head written before entries
/// existed (every version in it) is trimmed by the first publish after the upgrade.
/// </remarks>
public sealed class ModelRegistry(IBlobStore blobs, LocalFiles files, TimeProvider clock, int headVersions = ModelRegistry.DefaultHeadVersions)
{
    /// <summary>Ready versions <c>index.json</c> keeps (besides pending ones and alias targets). <value>20</value>.</summary>
    public const int DefaultHeadVersions = 20;

    private static readonly JsonSerializerOptions Json = new(CloudEvent.JsonOptions) { WriteIndented = true };

    /// <summary>The immutable entry of a version that has left the head: <c>{model}/version-{v:D10}.json</c>.</summary>
    public static string EntryName(string model, int version) => $"{model}/version-{version.ToString("D10", System.Globalization.CultureInfo.InvariantCulture)}.json";

    /// <summary>Which version a job claimed: <c>{model}/job-{jobId}.json</c>.</summary>
    public static string JobClaimName(string model, string jobId) => $"{model}/job-{jobId}.json";

    /// <summary>The files of a candidate that go into a version.</summary>
    public static IReadOnlyList<string> VersionFiles { get; } = ["config.json", "model.safetensors", "metrics.json", "report.md", "loss.png"];

    /// <summary>Files a candidate has only when its spec asked for them (<c>transfer.png</c>: the data-efficiency curve); copied when present.</summary>
    public static IReadOnlyList<string> OptionalVersionFiles { get; } = ["transfer.png"];

    /// <summary>Whether <paramref name="name"/> is a sample file a version may hold: <c>samples.png</c> or <c>samples/{name}.wav</c>, nothing else.</summary>
    public static bool IsSampleFile(string name) =>
        name == "samples.png" || (name.StartsWith("samples/", StringComparison.Ordinal) && name.EndsWith(".wav", StringComparison.Ordinal)
            && name.Count(c => c == '/') == 1 && Core.Naming.BlobNames.Problem(name) is null && name.Length <= 128);

    /// <summary>Reads the index, or null when the model has none.</summary>
    public async Task<(RegistryIndex Index, string ETag)?> ReadIndexAsync(string model, CancellationToken cancellationToken = default)
    {
        var opened = await blobs.OpenReadAsync(Containers.Registry, $"{model}/index.json", cancellationToken);
        if (opened is null)
        {
            return null;
        }

        await using var content = opened.Value.Content;
        var index = await JsonSerializer.DeserializeAsync<RegistryIndex>(content, Json, cancellationToken) ?? throw new InvalidDataException($"model-registry/{model}/index.json is empty.");
        return (index, opened.Value.Item.ETag);
    }

    /// <summary>The ready version an alias (<c>latest</c>, <c>champion</c>) or number names, or null.</summary>
    public async Task<int?> FindVersionAsync(string model, string selector, CancellationToken cancellationToken = default)
    {
        if (await ReadIndexAsync(model, cancellationToken) is not { } found)
        {
            return null;
        }

        var number = int.TryParse(selector, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n
            : found.Index.Aliases.TryGetValue(selector, out var aliased) ? aliased : 0;
        return number > 0 && await EntryAsync(model, found.Index, number, cancellationToken) is { State: "ready" } ? number : null;
    }

    /// <summary>A version's entry (from the head, or from its own entry once it has left the head), or null.</summary>
    public async Task<RegistryVersion?> GetVersionAsync(string model, int version, CancellationToken cancellationToken = default) =>
        await ReadIndexAsync(model, cancellationToken) is { } found ? await EntryAsync(model, found.Index, version, cancellationToken) : null;

    /// <summary>
    /// The model's newest <paramref name="limit"/> versions, newest first, each from the head or its entry (one read
    /// per version not in the head). Null when the model has no index.
    /// </summary>
    public async Task<IReadOnlyList<RegistryVersion>?> ListVersionsAsync(string model, int limit = int.MaxValue, CancellationToken cancellationToken = default)
    {
        if (await ReadIndexAsync(model, cancellationToken) is not { } found)
        {
            return null;
        }

        // Every number up to the highest is in the head or, once it left the head ready, in its entry.
        var index = found.Index;
        var inHead = index.Versions.ToDictionary(v => v.Version);
        var versions = new List<RegistryVersion>();
        for (var number = index.HighestVersion; number >= 1 && versions.Count < limit; number--)
        {
            if ((inHead.GetValueOrDefault(number) ?? await ReadEntryAsync(EntryName(model, number), cancellationToken)) is { } entry)
            {
                versions.Add(entry);
            }
        }

        return versions;
    }

    /// <summary>Publishes the candidate under <paramref name="candidatePrefix"/> (in <c>checkpoints</c>) as a new version, or finishes the job's version if one was already claimed.</summary>
    /// <param name="model">The model.</param>
    /// <param name="jobId">The job whose candidate it is.</param>
    /// <param name="candidatePrefix">The candidate's prefix in <c>checkpoints</c>.</param>
    /// <param name="perplexity">The candidate's test perplexity (the index records it).</param>
    /// <param name="lineage">Base model, job and dataset snapshot.</param>
    /// <param name="modelCard">The model card (<c>README.md</c>).</param>
    /// <param name="sampleFiles">Image and audio samples the candidate lists in its metrics (<c>samples.png</c>, <c>samples/*.wav</c>); each is copied and hashed like the rest.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    public async Task<PublishedVersion> PublishAsync(string model, string jobId, string candidatePrefix, double perplexity, JsonObject lineage, string modelCard,
        IReadOnlyList<string>? sampleFiles = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(lineage);
        var samples = (sampleFiles ?? []).Where(IsSampleFile).ToList();
        var version = await ClaimAsync(model, jobId, perplexity, cancellationToken);
        var prefix = $"{model}/{version}/";
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (file, optional) in VersionFiles.Select(f => (f, false)).Concat(OptionalVersionFiles.Concat(samples).Select(f => (f, true))))
        {
            var target = prefix + file;
            if (await blobs.GetAsync(Containers.Registry, target, cancellationToken) is null)
            {
                var opened = await blobs.OpenReadAsync(Containers.Checkpoints, candidatePrefix + file, cancellationToken);
                if (opened is null && optional)
                {
                    continue;
                }

                if (opened is null)
                {
                    throw new InvalidOperationException($"The candidate of job {jobId} has no {file} under checkpoints/{candidatePrefix}.");
                }

                await using var content = opened.Value.Content;
                try
                {
                    await blobs.WriteAsync(Containers.Registry, target, content, BlobCondition.NotExists, cancellationToken);
                }
                catch (BlobConflictException)
                {
                    // Another attempt copied it first: versions are immutable, keep theirs.
                }
            }

            hashes[file] = (await files.Sha256Async(Containers.Registry, target, cancellationToken))!;
        }

        await WriteOnceAsync(prefix + "README.md", modelCard, cancellationToken);
        hashes["README.md"] = (await files.Sha256Async(Containers.Registry, prefix + "README.md", cancellationToken))!;
        var manifest = new JsonObject
        {
            ["model"] = model,
            ["version"] = version,
            ["files"] = new JsonObject(hashes.Select(h => KeyValuePair.Create(h.Key, (JsonNode?)h.Value))),
            ["lineage"] = lineage.DeepClone(),
        };
        await WriteOnceAsync(prefix + "manifest.json", manifest.ToJsonString(Json), cancellationToken);
        var aliases = await MarkReadyAsync(model, version, perplexity, cancellationToken);
        return new PublishedVersion(version, hashes, aliases);
    }

    /// <summary>Downloads a version after checking every file against its manifest; throws <see cref="InvalidDataException"/> on any mismatch.</summary>
    public async Task DownloadVerifiedAsync(string model, int version, string directory, IReadOnlyList<string>? only = null, CancellationToken cancellationToken = default)
    {
        var prefix = $"{model}/{version}/";
        var manifestPath = Path.Combine(directory, "manifest.json");
        if (!await files.DownloadAsync(Containers.Registry, prefix + "manifest.json", manifestPath, cancellationToken: cancellationToken))
        {
            throw new InvalidDataException($"model-registry/{prefix} has no manifest.json.");
        }

        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(manifestPath, cancellationToken))!["files"]!.AsObject();
        foreach (var file in only ?? ["config.json", "model.safetensors"])
        {
            // Versions are immutable, so a verified local copy of the same blob version is reused.
            var local = Path.Combine(directory, file);
            await files.DownloadAsync(Containers.Registry, prefix + file, local, reuse: true, cancellationToken);
            await using var stream = File.OpenRead(local);
            var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
            var expected = manifest[file]?.GetValue<string>();
            if (actual != expected)
            {
                throw new InvalidDataException($"model-registry/{prefix}{file} does not match its manifest (SHA-256 {actual}, manifest says {expected}); refusing to use it.");
            }
        }
    }

    private async Task<int> ClaimAsync(string model, string jobId, double perplexity, CancellationToken cancellationToken)
    {
        int version;
        while (true)
        {
            var found = await ReadIndexAsync(model, cancellationToken);
            var index = (found?.Index ?? new RegistryIndex(model, [], new Dictionary<string, int>())).Normalized();
            if (index.Versions.FirstOrDefault(v => v.JobId == jobId) is { } existing)
            {
                version = existing.Version;
                break;
            }

            // Its version may have left the head long ago (the job's claim says which).
            if (index.HasOlder && await ReadClaimAsync(model, jobId, cancellationToken) is { } claimed)
            {
                version = claimed;
                break;
            }

            version = index.Latest + 1;
            var next = index with { Versions = [.. index.Versions, new RegistryVersion(version, jobId, "pending", clock.GetUtcNow(), perplexity)], Latest = version };
            if (await TryWriteIndexAsync(model, next.Normalized(), found?.ETag, cancellationToken))
            {
                break;
            }
        }

        // Before any file is copied, so the claim is on record before the version can ever leave the head.
        await WriteClaimAsync(model, version, jobId, cancellationToken);
        return version;
    }

    private async Task<IReadOnlyList<string>> MarkReadyAsync(string model, int version, double perplexity, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (read, etag) = (await ReadIndexAsync(model, cancellationToken))!.Value;
            var index = read.Normalized();
            if (index.Versions.FirstOrDefault(v => v.Version == version) is not { } entry)
            {
                // Already ready and moved out of the head by later publishes: nothing left to do but name its aliases.
                return index.Aliases.Where(a => a.Value == version).Select(a => a.Key).Order(StringComparer.Ordinal).ToList();
            }

            var versions = index.Versions.Select(v => v.Version == version ? v with { State = "ready" } : v).ToList();
            var latest = versions.Where(v => v.State == "ready").Max(v => v.Version);
            var aliases = new Dictionary<string, int>(index.Aliases) { ["latest"] = Math.Max(latest, index.Aliases.GetValueOrDefault("latest")) };
            var champion = index.Aliases.TryGetValue("champion", out var c) ? versions.FirstOrDefault(v => v.Version == c) : null;
            if (champion is null || perplexity < champion.Perplexity || champion.Version == version)
            {
                aliases["champion"] = version;
            }

            var next = (index with { Versions = versions, Aliases = aliases }).Normalized();
            if (await TryWriteIndexAsync(model, next, etag, cancellationToken))
            {
                return aliases.Where(a => a.Value == version).Select(a => a.Key).Order(StringComparer.Ordinal).ToList();
            }
        }
    }

    /// <summary>
    /// Writes the head conditionally. Ready versions beyond the newest <c>headVersions</c> (never a pending one or an
    /// alias's target) leave it, each written to its immutable entry first: a crash between the two leaves a version
    /// in both, identical, which readers take from the head.
    /// </summary>
    private async Task<bool> TryWriteIndexAsync(string model, RegistryIndex index, string? etag, CancellationToken cancellationToken)
    {
        var keep = index.Versions.Where(v => v.State == "ready").OrderByDescending(v => v.Version).Take(headVersions).Select(v => v.Version)
            .Concat(index.Aliases.Values).ToHashSet();
        var leaving = index.Versions.Where(v => v.State == "ready" && !keep.Contains(v.Version)).ToList();
        foreach (var entry in leaving)
        {
            // The job's claim first: a version published before claims were recorded gets one as it leaves.
            await WriteClaimAsync(model, entry.Version, entry.JobId, cancellationToken);
            await WriteOnceAsync(EntryName(model, entry.Version), JsonSerializer.Serialize(entry, Json), cancellationToken);
        }

        var head = index with { Versions = [.. index.Versions.Where(v => v.State != "ready" || keep.Contains(v.Version))] };
        try
        {
            var content = new MemoryStream(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(head, Json)));
            await blobs.WriteAsync(Containers.Registry, $"{model}/index.json", content, etag is null ? BlobCondition.NotExists : BlobCondition.Match(etag), cancellationToken);
            return true;
        }
        catch (BlobConflictException)
        {
            return false;
        }
    }

    private async Task<RegistryVersion?> EntryAsync(string model, RegistryIndex index, int version, CancellationToken cancellationToken)
    {
        if (index.Versions.FirstOrDefault(v => v.Version == version) is { } inHead)
        {
            return inHead;
        }

        return version >= 1 && version <= index.HighestVersion && index.HasOlder ? await ReadEntryAsync(EntryName(model, version), cancellationToken) : null;
    }

    private async Task<RegistryVersion?> ReadEntryAsync(string name, CancellationToken cancellationToken)
    {
        var opened = await blobs.OpenReadAsync(Containers.Registry, name, cancellationToken);
        if (opened is null)
        {
            return null;
        }

        await using var content = opened.Value.Content;
        return await JsonSerializer.DeserializeAsync<RegistryVersion>(content, Json, cancellationToken);
    }

    private async Task<int?> ReadClaimAsync(string model, string jobId, CancellationToken cancellationToken)
    {
        var opened = await blobs.OpenReadAsync(Containers.Registry, JobClaimName(model, jobId), cancellationToken);
        if (opened is null)
        {
            return null;
        }

        await using var content = opened.Value.Content;
        return (await JsonNode.ParseAsync(content, cancellationToken: cancellationToken))?["version"]?.GetValue<int>();
    }

    /// <summary>Records that <paramref name="jobId"/> yielded <paramref name="version"/> (<c>{model}/job-{jobId}.json</c>, written once).</summary>
    private Task WriteClaimAsync(string model, int version, string jobId, CancellationToken cancellationToken) =>
        WriteOnceAsync(JobClaimName(model, jobId), new JsonObject { ["version"] = version, ["jobId"] = jobId }.ToJsonString(Json), cancellationToken);

    private async Task WriteOnceAsync(string name, string text, CancellationToken cancellationToken)
    {
        try
        {
            await blobs.WriteAsync(Containers.Registry, name, new MemoryStream(Encoding.UTF8.GetBytes(text)), BlobCondition.NotExists, cancellationToken);
        }
        catch (BlobConflictException)
        {
            // Written by an earlier attempt; versions are immutable.
        }
    }
}

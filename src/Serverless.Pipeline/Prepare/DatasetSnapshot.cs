using System.Security.Cryptography;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Pipeline.Messaging;

namespace Serverless.Pipeline.Prepare;

/// <summary>
/// A model's dataset as it is now: every file directly under <c>datasets/{model}/</c> except <c>tune.json</c>, with
/// its ETag and SHA-256, and one hash over all of them. Two snapshots with the same hash hold the same data.
/// </summary>
public static class DatasetSnapshot
{
    /// <summary>Takes the snapshot (reading every file once).</summary>
    public static async Task<(List<SnapshotFile> Files, string Hash)> TakeAsync(IBlobStore blobs, string model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(blobs);
        var files = new List<SnapshotFile>();
        await foreach (var item in blobs.ListAsync(Containers.Datasets, model + "/", cancellationToken))
        {
            var relative = item.Name[(model.Length + 1)..];
            // Files directly in the model's folder, or one level down in a class folder (images, audio: {model}/{class}/x.png).
            if (relative == Containers.SpecFile || relative.Count(c => c == '/') > 1)
            {
                continue;
            }

            var opened = await blobs.OpenReadAsync(Containers.Datasets, item.Name, cancellationToken);
            if (opened is null)
            {
                continue;   // deleted since listed
            }

            await using var content = opened.Value.Content;
            var sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(content, cancellationToken));
            files.Add(new SnapshotFile(item.Name, opened.Value.Item.ETag, opened.Value.Item.Length, sha));
        }

        return (files, PipelineBus.StableId([.. files.Select(f => $"{f.Name}:{f.Sha256}")]));
    }
}

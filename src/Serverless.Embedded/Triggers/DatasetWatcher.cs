using System.Security.Cryptography;
using System.Text;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.Embedded.Triggers;

/// <summary>
/// The embedded blob-created trigger: lists <c>datasets/</c> (on a file-system event, and on a polling interval as a
/// fallback) and reports each blob version (name + ETag) it has no receipt for. A receipt is written to
/// <c>receipts/uploads/</c> only after the handler succeeded, so a restart neither misses nor repeats a blob, like
/// the Functions runtime's blob receipts.
/// </summary>
public sealed class DatasetWatcher : IDisposable
{
    private readonly IBlobStore _blobs;
    private readonly Func<string, string, CancellationToken, Task> _onBlob;
    private readonly FileSystemWatcher? _watcher;
    private readonly SemaphoreSlim _changed = new(0);

    /// <summary>Watches <paramref name="blobs"/>; <paramref name="onBlob"/> gets (name inside datasets/, ETag).</summary>
    public DatasetWatcher(IBlobStore blobs, Func<string, string, CancellationToken, Task> onBlob, string? folder = null)
    {
        _blobs = blobs;
        _onBlob = onBlob;
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
            _watcher = new FileSystemWatcher(folder) { IncludeSubdirectories = true, EnableRaisingEvents = true };
            _watcher.Created += (_, _) => Signal();
            _watcher.Changed += (_, _) => Signal();
            _watcher.Renamed += (_, _) => Signal();
        }
    }

    /// <summary>Reports every blob version without a receipt; returns how many.</summary>
    public async Task<int> ScanOnceAsync(CancellationToken cancellationToken = default)
    {
        var reported = 0;
        var items = new List<BlobItem>();
        await foreach (var item in _blobs.ListAsync(Containers.Datasets, "", cancellationToken))
        {
            items.Add(item);
        }

        foreach (var item in items)
        {
            var receipt = "uploads/" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(item.Name + "\n" + item.ETag)));
            if (await _blobs.GetAsync(Containers.Receipts, receipt, cancellationToken) is not null)
            {
                continue;
            }

            await _onBlob(item.Name, item.ETag, cancellationToken);
            await _blobs.WriteAsync(Containers.Receipts, receipt, new MemoryStream(Encoding.UTF8.GetBytes(item.Name)), cancellationToken: cancellationToken);
            reported++;
        }

        return reported;
    }

    /// <summary>Scans on every change and at least every <paramref name="interval"/>, until cancelled.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await ScanOnceAsync(cancellationToken);
            try
            {
                await _changed.WaitAsync(interval, cancellationToken);
                await Task.Delay(50, cancellationToken);   // let a burst of file events settle
                while (_changed.CurrentCount > 0)
                {
                    await _changed.WaitAsync(cancellationToken);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Signal()
    {
        if (_changed.CurrentCount == 0)
        {
            _changed.Release();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _watcher?.Dispose();
        _changed.Dispose();
    }
}

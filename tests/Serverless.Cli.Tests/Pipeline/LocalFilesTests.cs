using System.Text;
using Serverless.Embedded.Blobs;
using Serverless.Pipeline.Messaging;

namespace Serverless.Cli.Tests.Pipeline;

public sealed class LocalFilesTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "localfiles-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Download_WithReuse_KeepsTheLocalCopyOfTheSameVersion_AndRefetchesANewOne()
    {
        var blobs = new FolderBlobStore(Path.Combine(_root, "store"));
        var files = new LocalFiles(blobs);
        var local = Path.Combine(_root, "local", "model.safetensors");
        await blobs.WriteAsync("base-models", "m/model.safetensors", new MemoryStream(Encoding.UTF8.GetBytes("v1")));

        (await files.DownloadAsync("base-models", "m/model.safetensors", local, reuse: true)).ShouldBeTrue();
        await File.WriteAllTextAsync(local, "marker");          // if it were downloaded again, the marker would be gone
        await files.DownloadAsync("base-models", "m/model.safetensors", local, reuse: true);
        (await File.ReadAllTextAsync(local)).ShouldBe("marker");

        await blobs.WriteAsync("base-models", "m/model.safetensors", new MemoryStream(Encoding.UTF8.GetBytes("v2")));
        await files.DownloadAsync("base-models", "m/model.safetensors", local, reuse: true);
        (await File.ReadAllTextAsync(local)).ShouldBe("v2");
    }
}

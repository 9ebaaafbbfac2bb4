using System.Text;
using Serverless.Contracts;
using Serverless.Core.Ports;
using Serverless.Embedded.Blobs;

namespace Serverless.Embedded.Tests.Blobs;

public sealed class FolderBlobStoreTests : BlobStoreContract, IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "blobs-" + Guid.NewGuid().ToString("N"));

    protected override IBlobStore CreateStore() => new FolderBlobStore(_root);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Write_LeavesNoTemporaryFiles_AndListSkipsThem()
    {
        var store = new FolderBlobStore(_root);
        await store.WriteAsync(Container, "a.txt", new MemoryStream(Encoding.UTF8.GetBytes("x")));
        File.WriteAllText(Path.Combine(_root, Container, "b.txt.tmp-deadbeef"), "half written");
        var names = new List<string>();
        await foreach (var item in store.ListAsync(Container))
        {
            names.Add(item.Name);
        }

        names.ShouldBe(["a.txt"]);
    }

    [Fact]
    public void PathOf_StaysInsideTheContainer()
    {
        var store = new FolderBlobStore(_root);
        store.PathOf(Container, "x/y.txt").ShouldStartWith(Path.Combine(_root, Container));
        Should.Throw<ArgumentException>(() => store.PathOf("../up", "x"));
    }

    [Fact]
    public async Task FileDroppedByHand_IsVisibleWithAnETag()
    {
        var store = new FolderBlobStore(_root);
        Directory.CreateDirectory(Path.Combine(_root, Container, "datasets", "m"));
        File.WriteAllText(Path.Combine(_root, Container, "datasets", "m", "d.txt"), "hello");
        var item = await store.GetAsync(Container, "datasets/m/d.txt");
        item!.Length.ShouldBe(5);
    }
}

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
    public async Task OpenRead_UnderConcurrentWrites_GivesTheETagOfTheContentItReads()
    {
        // Found by the racing-publishes scenario: the ETag was taken from the path after opening, so a reader could get
        // the old content with the new ETag, and a conditional write based on it silently lost the newer update.
        var store = new FolderBlobStore(_root);
        var written = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        written[(await store.WriteAsync(Container, "hot.json", new MemoryStream(Encoding.UTF8.GetBytes("v0")))).ETag] = "v0";
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var writer = Task.Run(async () =>
        {
            for (var i = 1; !stop.IsCancellationRequested; i++)
            {
                var text = $"v{i}" + new string('.', i % 7);
                written[(await store.WriteAsync(Container, "hot.json", new MemoryStream(Encoding.UTF8.GetBytes(text)))).ETag] = text;
            }
        });
        var reads = 0;
        while (!stop.IsCancellationRequested)
        {
            var (content, item) = (await store.OpenReadAsync(Container, "hot.json"))!.Value;
            string text;
            using (var reader = new StreamReader(content))
            {
                text = await reader.ReadToEndAsync();
            }

            // The writer records an ETag just after its write returns: wait for it if this read was quicker.
            SpinWait.SpinUntil(() => written.ContainsKey(item.ETag), TimeSpan.FromSeconds(1));
            written[item.ETag].ShouldBe(text, $"read {reads}: the ETag names the content that was read");
            reads++;
        }

        await writer;
        reads.ShouldBeGreaterThan(100);
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

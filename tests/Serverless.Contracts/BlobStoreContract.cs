using System.Text;
using Serverless.Core.Ports;

namespace Serverless.Contracts;

/// <summary>What every <see cref="IBlobStore"/> must do. Derive, and return a fresh, empty store.</summary>
public abstract class BlobStoreContract
{
    /// <summary>The container the tests use; a store shared between runs should return a fresh one per test.</summary>
    protected virtual string Container { get; } = "contract-tests";

    protected abstract IBlobStore CreateStore();

    private static MemoryStream Text(string s) => new(Encoding.UTF8.GetBytes(s));

    private async Task<string?> ReadAsync(IBlobStore store, string name)
    {
        var opened = await store.OpenReadAsync(Container, name);
        if (opened is null)
        {
            return null;
        }

        await using var content = opened.Value.Content;
        using var reader = new StreamReader(content);
        return await reader.ReadToEndAsync();
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task Write_ThenRead_ReturnsContentAndProperties()
    {
        var store = CreateStore();
        var written = await store.WriteAsync(Container, "a/b/c.json", Text("{\"x\":1}"));
        written.Length.ShouldBe(7);
        written.ETag.ShouldNotBeNullOrEmpty();
        (await ReadAsync(store, "a/b/c.json")).ShouldBe("{\"x\":1}");
        (await store.GetAsync(Container, "a/b/c.json"))!.ETag.ShouldBe(written.ETag);
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task Missing_IsNull()
    {
        var store = CreateStore();
        (await store.GetAsync(Container, "nope.txt")).ShouldBeNull();
        (await store.OpenReadAsync(Container, "nope.txt")).ShouldBeNull();
        (await store.DeleteAsync(Container, "nope.txt")).ShouldBeFalse();
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task Overwrite_ChangesTheETag_EvenImmediately()
    {
        var store = CreateStore();
        var first = await store.WriteAsync(Container, "x.txt", Text("same"));
        var second = await store.WriteAsync(Container, "x.txt", Text("same"));
        second.ETag.ShouldNotBe(first.ETag);
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task IfNotExists_SecondWriterConflicts()
    {
        var store = CreateStore();
        await store.WriteAsync(Container, "once.txt", Text("first"), BlobCondition.NotExists);
        await Should.ThrowAsync<BlobConflictException>(() => store.WriteAsync(Container, "once.txt", Text("second"), BlobCondition.NotExists));
        (await ReadAsync(store, "once.txt")).ShouldBe("first");
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task IfMatch_StaleETagConflicts_CurrentSucceeds()
    {
        var store = CreateStore();
        var v1 = await store.WriteAsync(Container, "doc.json", Text("1"));
        var v2 = await store.WriteAsync(Container, "doc.json", Text("2"), BlobCondition.Match(v1.ETag));
        await Should.ThrowAsync<BlobConflictException>(() => store.WriteAsync(Container, "doc.json", Text("3"), BlobCondition.Match(v1.ETag)));
        await store.WriteAsync(Container, "doc.json", Text("4"), BlobCondition.Match(v2.ETag));
        (await ReadAsync(store, "doc.json")).ShouldBe("4");
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task IfMatch_OnMissingBlob_Conflicts()
    {
        var store = CreateStore();
        await Should.ThrowAsync<BlobConflictException>(() => store.WriteAsync(Container, "ghost.json", Text("1"), BlobCondition.Match("\"0x1\"")));
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task ConcurrentConditionalWriters_ExactlyOneWinsEachRound()
    {
        var store = CreateStore();
        var current = await store.WriteAsync(Container, "counter.txt", Text("0"));
        var attempts = Enumerable.Range(0, 8).Select(async i =>
        {
            try
            {
                await store.WriteAsync(Container, "counter.txt", Text($"writer {i}"), BlobCondition.Match(current.ETag));
                return true;
            }
            catch (BlobConflictException)
            {
                return false;
            }
        });
        (await Task.WhenAll(attempts)).Count(won => won).ShouldBe(1);
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task List_ByPrefix_InNameOrder()
    {
        var store = CreateStore();
        foreach (var name in new[] { "datasets/m/b.txt", "datasets/m/a.txt", "datasets/n/c.txt", "other.txt" })
        {
            await store.WriteAsync(Container, name, Text(name));
        }

        var listed = new List<string>();
        await foreach (var item in store.ListAsync(Container, "datasets/m/"))
        {
            listed.Add(item.Name);
        }

        listed.ShouldBe(["datasets/m/a.txt", "datasets/m/b.txt"]);
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task Delete_WithStaleETag_Conflicts_WithCurrent_Deletes()
    {
        var store = CreateStore();
        var v1 = await store.WriteAsync(Container, "d.txt", Text("1"));
        var v2 = await store.WriteAsync(Container, "d.txt", Text("2"));
        await Should.ThrowAsync<BlobConflictException>(() => store.DeleteAsync(Container, "d.txt", BlobCondition.Match(v1.ETag)));
        (await store.DeleteAsync(Container, "d.txt", BlobCondition.Match(v2.ETag))).ShouldBeTrue();
        (await store.GetAsync(Container, "d.txt")).ShouldBeNull();
    }

    [ContractTheory(ContractPort.Blobs)]
    [InlineData("../escape.txt")]
    [InlineData("/etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("a//b")]
    [InlineData("bad\u0001name")]
    [InlineData("back\\slash")]
    [InlineData("")]
    public async Task UnsafeNames_AreRejected(string name)
    {
        var store = CreateStore();
        await Should.ThrowAsync<ArgumentException>(() => store.WriteAsync(Container, name, Text("x")));
    }

    [ContractFact(ContractPort.Blobs)]
    public async Task LargeContent_StreamsThrough()
    {
        var store = CreateStore();
        var data = new byte[3 * 1024 * 1024 + 17];
        new Random(1).NextBytes(data);
        await store.WriteAsync(Container, "big.bin", new MemoryStream(data));
        var opened = (await store.OpenReadAsync(Container, "big.bin"))!.Value;
        await using var content = opened.Content;
        using var copy = new MemoryStream();
        await content.CopyToAsync(copy);
        copy.ToArray().ShouldBe(data);
    }
}

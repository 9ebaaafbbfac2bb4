using Serverless.Model.Data;

namespace Serverless.Model.Tests.Data;

public class TokenShardTests
{
    [Fact]
    public void WriteThenRead_MoreTokensThanTheBuffer_RoundTrips()
    {
        using var dir = new TempDirectory();
        var path = dir.File("train.bin");
        var tokens = Enumerable.Range(0, 10_000).Select(i => (i * 7919) % 65536).ToArray();
        using (var writer = new TokenShardWriter(path, bufferTokens: 64))
        {
            foreach (var chunk in tokens.Chunk(1000))
            {
                writer.Write(chunk);
            }

            writer.Complete();
        }

        using var reader = TokenShardReader.Open(path, bufferTokens: 100);
        reader.Count.ShouldBe(10_000);
        reader.ReadChunks().SelectMany(c => c).ShouldBe(tokens);
        var middle = new int[300];
        reader.Read(4_950, middle);
        middle.ShouldBe(tokens[4_950..5_250]);
    }

    [Fact]
    public void Write_FollowsLlmCHeader()
    {
        using var dir = new TempDirectory();
        var path = dir.File("val.bin");
        using (var writer = new TokenShardWriter(path))
        {
            writer.Write([50256, 15496, 995]);
            writer.Complete();
        }

        var bytes = File.ReadAllBytes(path);
        bytes.Length.ShouldBe(1024 + 6);
        BitConverter.ToInt32(bytes, 0).ShouldBe(20240520);
        BitConverter.ToInt32(bytes, 4).ShouldBe(1);
        BitConverter.ToInt32(bytes, 8).ShouldBe(3);
        bytes.Skip(12).Take(1012).ShouldAllBe(b => b == 0);
        BitConverter.ToUInt16(bytes, 1024).ShouldBe((ushort)50256);
        BitConverter.ToUInt16(bytes, 1028).ShouldBe((ushort)995);
    }

    [Fact]
    public void Writer_NotCompleted_LeavesNoFile()
    {
        using var dir = new TempDirectory();
        using (var writer = new TokenShardWriter(dir.File("x.bin")))
        {
            writer.Write([1, 2, 3]);
        }

        Directory.GetFiles(dir.Path).ShouldBeEmpty();
    }

    [Fact]
    public void Write_TokenAbove65535_IsRefused()
    {
        using var dir = new TempDirectory();
        using var writer = new TokenShardWriter(dir.File("x.bin"));
        Should.Throw<ArgumentOutOfRangeException>(() => writer.Write([70000]));
    }

    [Fact]
    public void Open_TruncatedShard_SaysSo()
    {
        using var dir = new TempDirectory();
        var path = dir.File("x.bin");
        using (var writer = new TokenShardWriter(path))
        {
            writer.Write([1, 2, 3, 4]);
            writer.Complete();
        }

        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^2]);
        Should.Throw<InvalidDataException>(() => TokenShardReader.Open(path)).Message.ShouldContain("declares 4 tokens");
    }

    [Fact]
    public void Open_WrongMagic_SaysSo()
    {
        using var dir = new TempDirectory();
        var path = dir.Write("x.bin", new byte[1024]);
        Should.Throw<InvalidDataException>(() => TokenShardReader.Open(path)).Message.ShouldContain("magic number 0");
    }
}

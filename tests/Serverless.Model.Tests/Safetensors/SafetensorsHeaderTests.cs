using System.Text;
using Serverless.Model.Safetensors;

namespace Serverless.Model.Tests.Safetensors;

public class SafetensorsHeaderTests
{
    private static byte[] File(string header, int dataBytes, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BitConverter.GetBytes(declaredLength ?? (ulong)json.Length).CopyTo(bytes, 0);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    private static ModelFormatException Refused(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes);
        return Should.Throw<ModelFormatException>(() => SafetensorsHeader.Read(stream, "model.safetensors"));
    }

    [Fact]
    public void Read_ValidHeader_ReturnsEntriesAndMetadata()
    {
        using var stream = new MemoryStream(File("""{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}}""", 32));
        var header = SafetensorsHeader.Read(stream, "x");
        header.Metadata["format"].ShouldBe("pt");
        header.Tensors["a"].Shape.ShouldBe([2L, 3L]);
        header.Tensors["b"].DType.ShouldBe("BF16");
    }

    [Fact]
    public void Read_ZipPickle_IsRefusedAsPickle() =>
        Refused([(byte)'P', (byte)'K', 3, 4, 0, 0, 0, 0, 0, 0]).Message.ShouldContain("is a PyTorch pickle");

    [Fact]
    public void Read_BarePickle_IsRefusedAsPickle() =>
        Refused([0x80, 0x04, 0x95, 0, 0, 0, 0, 0, 0]).Message.ShouldContain("never loaded");

    [Fact]
    public void Read_Truncated_SaysTruncated() =>
        Refused([1, 2, 3]).Message.ShouldContain("is truncated: 3 bytes");

    [Fact]
    public void Read_HeaderLengthPastEnd_IsRefusedBeforeAllocating() =>
        Refused(File("{}", 0, declaredLength: ulong.MaxValue / 2)).Message.ShouldContain("past the end of the file");

    [Fact]
    public void Read_OffsetsOutsideData_NamesTensor() =>
        Refused(File("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8))
            .Message.ShouldContain("tensor 'w' data_offsets [0, 16] outside the data section (0 to 8 bytes)");

    [Fact]
    public void Read_OverlappingTensors_NamesBoth() =>
        Refused(File("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24))
            .Message.ShouldContain("overlapping tensors: 'a' [0, 16) and 'b' [8, 24)");

    [Fact]
    public void Read_ShapeDisagreesWithOffsets_SaysBothSizes() =>
        Refused(File("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}""", 16))
            .Message.ShouldContain("shape [3] of F32 (12 bytes), but its data_offsets span 16 bytes");

    [Fact]
    public void Read_ShapeThatOverflows_IsRefused() =>
        Refused(File("""{"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,16]}}""", 16))
            .Message.ShouldContain("overflows");

    [Fact]
    public void Read_UnknownDtype_ListsKnownOnes() =>
        Refused(File("""{"a":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}}""", 1))
            .Message.ShouldContain("unknown dtype 'F8_E9'");

    [Fact]
    public void Read_HeaderNotJson_IsRefused() =>
        Refused(File("""{"a": [""", 0)).Message.ShouldContain("not valid JSON");

    [Fact]
    public void Read_NegativeDimension_IsRefused() =>
        Refused(File("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}""", 0)).Message.ShouldContain("not a non-negative integer");
}

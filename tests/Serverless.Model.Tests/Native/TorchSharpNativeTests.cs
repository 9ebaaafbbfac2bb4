using TorchSharp;

namespace Serverless.Model.Tests.Native;

public class TorchSharpNativeTests
{
    [Fact]
    public void Torch_LoadsNativeLibraryAndComputes()
    {
        using var a = torch.ones(2, 3);
        using var b = torch.ones(3, 4);
        using var c = torch.matmul(a, b);
        c.sum().item<float>().ShouldBe(24f);
    }
}

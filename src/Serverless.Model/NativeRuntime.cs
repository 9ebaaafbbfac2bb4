using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Serverless.Model;

/// <summary>
/// Process-wide settings for libtorch, applied when this assembly loads, before the first tensor is allocated.
/// </summary>
public static partial class NativeRuntime
{
    /// <summary>
    /// Asks libtorch to back large tensors with transparent huge pages (<c>THP_MEM_ALLOC_ENABLE=1</c>) unless the
    /// environment already says otherwise. On the VMs we measured, every fresh 500 MB allocation otherwise costs
    /// ~0.8 s of page faults (against ~30 ms with huge pages), which made allocation, not arithmetic, the cost of a
    /// GPT-2 training step. libtorch reads the variable once, at its first allocation, through the C environment
    /// (so <see cref="Environment.SetEnvironmentVariable(string, string)"/> would not reach it).
    /// </summary>
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "libtorch reads the setting once, at its first allocation; it must be set before any model code runs.")]
    internal static void Configure()
    {
        if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("THP_MEM_ALLOC_ENABLE") is null)
        {
            _ = SetEnv("THP_MEM_ALLOC_ENABLE", "1", 0);
        }
    }

    /// <summary>Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX), where mixed precision pays off.</summary>
    public static bool CpuHasBf16 { get; } = DetectBf16();

    private static bool DetectBf16()
    {
        try
        {
            return OperatingSystem.IsLinux() && File.ReadLines("/proc/cpuinfo")
                .FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) is { } flags
                && (flags.Contains(" avx512_bf16", StringComparison.Ordinal) || flags.Contains(" amx_bf16", StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Serverless.Model;

/// <summary>
/// Process-wide settings for libtorch and the C library's allocator, applied when this assembly loads, before the first
/// tensor is allocated.
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

        KeepFreedMemory();
    }

    /// <summary>
    /// Tells glibc's malloc, which libtorch allocates every tensor with, to keep freed memory for the next allocation
    /// instead of handing it back to the kernel: no <c>mmap</c> per large block (by default a block over the mmap
    /// threshold, which starts at 128 KiB and grows to at most 32 MiB, is a fresh mapping, unmapped again when freed),
    /// no trimming of a heap's free top below 2 GiB, and one arena for threads that get theirs from now on. A training
    /// step frees and allocates the same sizes every step (a GPT-2 124M step's logits, their softmax and gradients, the
    /// embedding's gradient: about 0.5 GB), and a fresh mapping costs page faults and the kernel zeroing every page,
    /// every step: <c>perf</c> put the kernel's page clearing at 14 % of a 124M bf16 training run. The costs: a process
    /// keeps its peak memory until it exits, and holes in the heap are not given back either.
    /// Set at run time this is partial: threads that already have an arena of their own keep it (glibc may also hand a
    /// new thread another thread's arena), and a thread arena's heap holds at most 64 MB, so larger blocks there stay
    /// fresh mappings and a wholly free extra heap is still unmapped. A process started with
    /// <see cref="MallocTunables"/> in its environment has the settings from its first allocation, so every thread uses
    /// the main arena: the trainers this project starts (the embedded pipeline's, the side runs) are started so, and the
    /// trainer's container image sets them. Nothing is done with <c>TUNE_MALLOC=default</c>, when the process's own
    /// <c>GLIBC_TUNABLES</c> already sets malloc tunables (yours win), where the C library has no <c>mallopt</c>
    /// (musl), or on other systems.
    /// </summary>
    private static void KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(MallocVariable) == "default"
            || Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("glibc.malloc.", StringComparison.Ordinal) == true)
        {
            return;
        }

        try
        {
            const int trimThreshold = -1, mmapMax = -4, arenaMax = -8;   // glibc's M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX
            _ = MallocOption(arenaMax, 1);
            _ = MallocOption(mmapMax, 0);
            _ = MallocOption(trimThreshold, int.MaxValue);
        }
        catch (EntryPointNotFoundException)
        {
            // Not glibc: its own policy stays.
        }
    }

    /// <summary>The variable that turns the malloc settings off (<c>TUNE_MALLOC=default</c>).</summary>
    public const string MallocVariable = "TUNE_MALLOC";

    /// <summary>
    /// The settings of <see cref="KeepFreedMemory"/> as glibc reads them at a process's start (<c>GLIBC_TUNABLES</c>).
    /// </summary>
    public const string MallocTunables = "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647";

    /// <summary>
    /// The <c>GLIBC_TUNABLES</c> to start a trainer process with: <see cref="MallocTunables"/> on Linux, or null (add
    /// nothing) where this process has <c>TUNE_MALLOC=default</c> or a <c>GLIBC_TUNABLES</c> of its own, which the child
    /// then inherits as it is.
    /// </summary>
    public static string? TrainerMallocTunables =>
        OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable(MallocVariable) != "default"
        && Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is null
            ? MallocTunables
            : null;

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallocOption(int parameter, int value);

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

namespace Serverless.Reliability.Tests.Harness;

/// <summary>What a scenario needs from the machine to break it for real.</summary>
internal enum MachineNeed
{
    /// <summary>Mounting a small tmpfs (root).</summary>
    Mount,

    /// <summary>A writable cgroup-v1 memory controller, to have the kernel's OOM killer end a trainer.</summary>
    MemoryCgroup,
}

/// <summary>
/// A scenario that needs root or a memory cgroup: it runs where the machine allows it (CI runs as root) and is
/// reported <em>skipped</em>, with the reason, where it does not — never passed without running.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class MachineFactAttribute : FactAttribute
{
    public const string MemoryCgroups = "/sys/fs/cgroup/memory";

    public MachineFactAttribute(MachineNeed need) => Skip = need switch
    {
        MachineNeed.Mount when !IsRoot() => "needs root, to mount a small tmpfs and fill it",
        MachineNeed.MemoryCgroup when !IsRoot() || !File.Exists(Path.Combine(MemoryCgroups, "memory.limit_in_bytes")) =>
            $"needs root and a cgroup-v1 memory controller at {MemoryCgroups}",
        _ => null,
    };

    private static bool IsRoot()
    {
        try
        {
            return File.ReadLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0");
        }
        catch (IOException)
        {
            return false;
        }
    }
}

using static TorchSharp.torch;

namespace Serverless.Model.Tests.Native;

/// <summary>
/// <see cref="NativeRuntime"/> has glibc keep freed memory for the next allocation: a large tensor freed and allocated
/// again reuses the same pages instead of a fresh mapping (a page fault and a zeroed page each), on the thread a
/// training run happens to use.
/// </summary>
[Collection("RunsAlone")]   // the resident set is process-wide: other tests' allocations and frees would count
public sealed class MallocTests
{
    public static TheoryData<string> Threads => ["this thread", "a new thread", "the thread pool"];

    [Theory]
    [MemberData(nameof(Threads))]
    public async Task AFreedLargeTensor_StaysResident_ForTheNextOne(string where)
    {
        _ = NativeRuntime.CpuHasBf16;   // loads Serverless.Model, whose initializer sets malloc up (as any model code would)
        (long Before, long AfterFree) Measure()
        {
            // 40 MB: over malloc's largest mmap threshold (32 MB), under the 64 MB that one heap of a thread's own arena holds.
            const long elements = 10L << 20;
            using (var warm = ones(elements))
            {
            }

            using var first = ones(elements);
            var before = ResidentBytes();
            first.Dispose();
            return (before, ResidentBytes());
        }

        var (before, afterFree) = where switch
        {
            "this thread" => Measure(),
            "a new thread" => OnNewThread(Measure),
            _ => await Task.Run(Measure),
        };

        // Handed back to the kernel, the 40 MB would leave the resident set.
        (before - afterFree).ShouldBeLessThan(10L << 20, $"freed: {(before - afterFree) >> 20} MB left the resident set");
    }

    /// <summary>
    /// glibc ignores a tunable it does not know without a word, so the string is checked by its effect: in a process
    /// started with it, a 100 MB block that a second thread frees (over the 64 MB a thread arena's heap holds) stays
    /// resident; without it, it goes back to the kernel. The process is Python's (any glibc program would do), through
    /// ctypes, so the check sees only malloc.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheTrainersTunables_KeepAFreedLargeBlock_OnAnyThread(bool withTunables)
    {
        const string script = """
            import ctypes, threading
            libc = ctypes.CDLL(None)
            libc.malloc.restype = ctypes.c_void_p
            def resident():
                with open("/proc/self/statm") as f:
                    return int(f.read().split()[1]) * 4096
            result = []
            def work():
                size = 100 << 20
                block = libc.malloc(size)
                ctypes.memset(block, 1, size)
                before = resident()
                libc.free(ctypes.c_void_p(block))
                result.append(before - resident())
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            print(result[0])
            """;
        var start = new System.Diagnostics.ProcessStartInfo("python3", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment.Remove("GLIBC_TUNABLES");
        if (withTunables)
        {
            start.Environment["GLIBC_TUNABLES"] = NativeRuntime.MallocTunables;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        process.ExitCode.ShouldBe(0, error);
        var released = long.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        if (withTunables)
        {
            released.ShouldBeLessThan(10L << 20, "the freed block stays for the next allocation");
        }
        else
        {
            released.ShouldBeGreaterThan(90L << 20, "without the tunables glibc unmaps it (so the check above can fail)");
        }
    }

    [Fact]
    public void TheTrainerImage_SetsTheSameTunables()
    {
        var dockerfile = File.ReadAllText(Path.Combine(Training.TrainingFixtures.RepositoryRoot, "src", "Serverless.Trainer", "Dockerfile"));
        dockerfile.ShouldContain($"ENV GLIBC_TUNABLES={NativeRuntime.MallocTunables}\n");
    }

    private static T OnNewThread<T>(Func<T> work)
    {
        T result = default!;
        var thread = new Thread(() => result = work());
        thread.Start();
        thread.Join();
        return result;
    }

    private static long ResidentBytes() =>
        long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]) * Environment.SystemPageSize;
}

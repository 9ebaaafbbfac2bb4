using System.Collections.Concurrent;
using System.Diagnostics;
using Serverless.Core.Ports;

namespace Serverless.Embedded.Dispatch;

/// <summary>
/// Runs each trainer as a child process (<c>{executable} {arguments…} {jobId}</c>). Cancel asks the process to stop
/// (SIGTERM), then kills it after a grace period. When a run ends with a non-zero exit code, <c>exited</c> is told
/// (job, exit code, whether the kernel killed it for memory), so the host can report a trainer that died without
/// saying so. Out-of-memory kills are recognised from the memory cgroup the trainer runs in (its <c>oom_kill</c>
/// count, cgroup v1 or v2), sampled every second while it runs, since a killed process cannot say so itself.
/// </summary>
public sealed class ProcessJobDispatcher(string executable, IReadOnlyList<string> arguments, Action<string, int, bool>? exited = null, TimeSpan? gracePeriod = null,
    IReadOnlyDictionary<string, string>? environment = null) : IJobDispatcher, IDisposable
{
    private readonly ConcurrentDictionary<string, (string JobId, Process Process)> _runs = new();
    private readonly ConcurrentDictionary<int, (string Counter, long Kills)> _memoryCgroups = new();
    private Timer? _sampler;

    /// <inheritdoc />
    public Task<string> StartAsync(string jobId, int attempt, CancellationToken cancellationToken = default)
    {
        var start = new ProcessStartInfo(executable) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add(jobId);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        start.Environment["JOB_ID"] = jobId;
        start.Environment["JOB_ATTEMPT"] = attempt.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var execution = $"{jobId}-{Guid.NewGuid():N}";
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.Exited += (_, _) =>
        {
            var code = process.ExitCode;
            _runs.TryRemove(execution, out _);
            var outOfMemory = _memoryCgroups.TryRemove(process.Id, out var cgroup) && code == 137 && OomKills(cgroup.Counter) > cgroup.Kills;
            if (code != 0)
            {
                exited?.Invoke(jobId, code, outOfMemory);
            }

            process.Dispose();
        };
        _runs[execution] = (jobId, process);
        process.Start();
        Sample(process.Id);
        _sampler ??= new Timer(_ => SampleAll(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return Task.FromResult(execution);
    }

    /// <inheritdoc />
    public async Task CancelAsync(string execution, CancellationToken cancellationToken = default)
    {
        if (!_runs.TryGetValue(execution, out var run))
        {
            return;
        }

        try
        {
            run.Process.Kill(entireProcessTree: false);
            await run.Process.WaitForExitAsync(cancellationToken).WaitAsync(gracePeriod ?? TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // Already gone, or still going after the grace period: make sure.
            try
            {
                run.Process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }

    /// <inheritdoc />
    public Task<ExecutionStatus> GetStatusAsync(string execution, CancellationToken cancellationToken = default) =>
        Task.FromResult(_runs.ContainsKey(execution) ? ExecutionStatus.Running : ExecutionStatus.Unknown);

    /// <inheritdoc />
    public Task<int> CountRunningAsync(CancellationToken cancellationToken = default) => Task.FromResult(_runs.Count);

    /// <summary>The running trainers' process ids, by job (for tests that kill them).</summary>
    public IReadOnlyDictionary<string, int> ProcessIds => _runs.Values.ToDictionary(r => r.JobId, r => r.Process.Id);

    private void SampleAll()
    {
        foreach (var (_, (_, process)) in _runs)
        {
            try
            {
                Sample(process.Id);
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }
        }
    }

    /// <summary>Remembers the memory cgroup a trainer is in now and its out-of-memory kill count (a process can be moved between cgroups).</summary>
    private void Sample(int pid)
    {
        if (MemoryCgroupCounter(pid) is not { } counter)
        {
            return;
        }

        if (!_memoryCgroups.TryGetValue(pid, out var known) || known.Counter != counter)
        {
            _memoryCgroups[pid] = (counter, OomKills(counter));
        }
    }

    /// <summary>The file holding the oom_kill count of the memory cgroup of <paramref name="pid"/>: v2 <c>memory.events</c>, v1 <c>memory.oom_control</c>.</summary>
    private static string? MemoryCgroupCounter(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/cgroup"))
            {
                var parts = line.Split(':', 3);
                if (parts.Length == 3 && parts[1].Split(',').Contains("memory") && File.Exists($"/sys/fs/cgroup/memory{parts[2]}/memory.oom_control"))
                {
                    return $"/sys/fs/cgroup/memory{parts[2]}/memory.oom_control";
                }

                if (parts.Length == 3 && parts[0] == "0" && parts[1].Length == 0 && File.Exists($"/sys/fs/cgroup{parts[2]}/memory.events"))
                {
                    return $"/sys/fs/cgroup{parts[2]}/memory.events";
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    private static long OomKills(string counter)
    {
        try
        {
            return File.ReadLines(counter).Select(l => l.Split(' ')).Where(p => p.Length == 2 && p[0] == "oom_kill")
                .Select(p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _sampler?.Dispose();
        foreach (var (_, (_, process)) in _runs)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}

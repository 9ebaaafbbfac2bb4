using System.Collections.Concurrent;
using System.Diagnostics;
using Serverless.Core.Ports;

namespace Serverless.Embedded.Dispatch;

/// <summary>
/// Runs each trainer as a child process (<c>{executable} {arguments…} {jobId}</c>). Cancel asks the process to stop
/// (SIGTERM), then kills it after a grace period. When a run ends with a non-zero exit code, <c>exited</c> is told, so
/// the host can report a trainer that died without saying so.
/// </summary>
public sealed class ProcessJobDispatcher(string executable, IReadOnlyList<string> arguments, Action<string, int>? exited = null, TimeSpan? gracePeriod = null,
    IReadOnlyDictionary<string, string>? environment = null) : IJobDispatcher, IDisposable
{
    private readonly ConcurrentDictionary<string, (string JobId, Process Process)> _runs = new();

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

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var execution = $"{jobId}-{Guid.NewGuid():N}";
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.Exited += (_, _) =>
        {
            var code = process.ExitCode;
            _runs.TryRemove(execution, out _);
            if (code != 0)
            {
                exited?.Invoke(jobId, code);
            }

            process.Dispose();
        };
        _runs[execution] = (jobId, process);
        process.Start();
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

    /// <inheritdoc />
    public void Dispose()
    {
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

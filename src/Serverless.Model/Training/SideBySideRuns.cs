using System.Runtime.ExceptionServices;
using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>
/// Runs a job's independent training runs (candidate, scratch, the curve's runs), one at a time or two at a time.
/// <para>
/// A small model's matrix products are too small to keep two cores busy: the demo's 0.84 M-parameter model trains
/// only about 1.3× faster on two threads than on one, so two runs side by side on one thread each do more work than
/// one after the other on both (README, "Performance"). Two at a time, each lane is its own thread and libtorch's
/// intra-op threads are split between the lanes for the duration (libtorch applies the process-wide count to a
/// thread when it first runs a parallel op); the count is restored afterwards.
/// </para>
/// <para>
/// The first run to fail cancels the others (each stops at a step boundary, as on Ctrl+C) and its exception is the
/// one thrown, as it would be one at a time; when the caller cancelled, the cancellation is. Runs are handed out in
/// list order, so progress follows the same order. The thread count is process-wide, so side-by-side sections in one
/// process take turns.
/// </para>
/// </summary>
internal static class SideBySideRuns
{
    /// <summary>Runs at a time when side by side.</summary>
    public const int Lanes = 2;

    private static readonly Lock ThreadCount = new();

    /// <summary>Runs <paramref name="runs"/> on <paramref name="lanes"/> threads (1: in order on this thread).</summary>
    public static void Run(IReadOnlyList<Action<CancellationToken>> runs, int lanes, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(runs);
        lanes = Math.Clamp(lanes, 1, Math.Max(1, runs.Count));
        if (lanes == 1)
        {
            foreach (var run in runs)
            {
                run(cancellation);
            }

            return;
        }

        using var turn = ThreadCount.EnterScope();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var gate = new Lock();
        ExceptionDispatchInfo? first = null;
        var next = -1;
        var threads = get_num_threads();
        set_num_threads(Math.Max(1, threads / lanes));
        try
        {
            var workers = Enumerable.Range(0, lanes).Select(lane => new Thread(() =>
            {
                for (var i = Interlocked.Increment(ref next); i < runs.Count; i = Interlocked.Increment(ref next))
                {
                    lock (gate)
                    {
                        if (first is not null)
                        {
                            return;
                        }
                    }

                    try
                    {
                        stop.Token.ThrowIfCancellationRequested();
                        runs[i](stop.Token);
                    }
                    catch (Exception e)
                    {
                        lock (gate)
                        {
                            // A run cancelled because another failed does not hide that failure.
                            if (first is null || (first.SourceException is OperationCanceledException && e is not OperationCanceledException))
                            {
                                first = ExceptionDispatchInfo.Capture(e);
                            }
                        }

                        stop.Cancel();
                        return;
                    }
                }
            }, maxStackSize: 16 << 20) { IsBackground = true, Name = $"training lane {lane + 1}" }).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
        }
        finally
        {
            set_num_threads(threads);
        }

        if (first is not null)
        {
            cancellation.ThrowIfCancellationRequested();
            first.Throw();
        }
    }
}

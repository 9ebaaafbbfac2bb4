using Serverless.Model.Training;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Training;

/// <summary>Independent runs two at a time: every run runs once, the first failure wins, libtorch's threads come back.</summary>
/// <remarks>Alone: libtorch's thread count is process-wide, and other tests' side-by-side jobs change it while they run.</remarks>
[Collection(nameof(RunsAlone))]
public sealed class SideBySideRunsTests
{
    [Fact]
    public void TwoLanes_RunEveryRunOnce_OnTwoThreads_OnHalfTheIntraOpThreads_AndRestoreTheCount()
    {
        var before = get_num_threads();
        var ran = new int[6];
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var intraOp = new System.Collections.Concurrent.ConcurrentBag<int>();
        using var bothRunning = new Barrier(2);
        var runs = Enumerable.Range(0, ran.Length).Select(i => (Action<CancellationToken>)(_ =>
        {
            Interlocked.Increment(ref ran[i]);
            threads[Environment.CurrentManagedThreadId] = 1;
            using (var x = ones(64, 64))
            using (var y = x.matmul(x))
            {
                intraOp.Add(get_num_threads());
            }

            if (i < 2)
            {
                bothRunning.SignalAndWait(TimeSpan.FromSeconds(30), CancellationToken.None).ShouldBeTrue("the first two runs run at the same time");
            }
        })).ToList();

        SideBySideRuns.Run(runs, SideBySideRuns.Lanes, CancellationToken.None);

        ran.ShouldAllBe(n => n == 1);
        threads.Count.ShouldBe(2);
        threads.Keys.ShouldNotContain(Environment.CurrentManagedThreadId);
        intraOp.ShouldAllBe(n => n == Math.Max(1, before / 2));
        get_num_threads().ShouldBe(before);
    }

    [Fact]
    public void OneLane_RunsInOrder_OnThisThread()
    {
        var order = new List<int>();
        SideBySideRuns.Run([_ => order.Add(1), _ => order.Add(2), _ => order.Add(3)], lanes: 1, CancellationToken.None);
        order.ShouldBe([1, 2, 3]);
        var thread = -1;
        SideBySideRuns.Run([_ => thread = Environment.CurrentManagedThreadId], SideBySideRuns.Lanes, CancellationToken.None);
        thread.ShouldBe(Environment.CurrentManagedThreadId, "one run needs no second lane");
    }

    [Fact]
    public void AFailure_CancelsTheRunBesideIt_SkipsTheRest_AndIsTheExceptionThrown()
    {
        var before = get_num_threads();
        var laterRan = false;
        var sawCancellation = false;
        using var started = new ManualResetEventSlim();
        Action<CancellationToken>[] runs =
        [
            token =>
            {
                started.Set();
                // Like a training run: it stops at a step boundary once cancelled.
                while (!token.IsCancellationRequested)
                {
                    Thread.Sleep(5);
                }

                sawCancellation = true;
                token.ThrowIfCancellationRequested();
            },
            _ =>
            {
                started.Wait(TimeSpan.FromSeconds(30), CancellationToken.None);
                throw new TrainingDivergedException(3, float.NaN, 1e-3, 1);
            },
            _ => laterRan = true,
        ];

        Should.Throw<TrainingDivergedException>(() => SideBySideRuns.Run(runs, SideBySideRuns.Lanes, CancellationToken.None));
        sawCancellation.ShouldBeTrue();
        laterRan.ShouldBeFalse();
        get_num_threads().ShouldBe(before);
    }

    [Fact]
    public void CancellingTheJob_StopsBothRuns_WithOperationCanceled()
    {
        using var cancel = new CancellationTokenSource();
        using var bothStarted = new CountdownEvent(2);
        var stopped = 0;
        Action<CancellationToken> run = token =>
        {
            bothStarted.Signal();
            while (!token.IsCancellationRequested)
            {
                Thread.Sleep(5);
            }

            Interlocked.Increment(ref stopped);
            token.ThrowIfCancellationRequested();
        };
        _ = Task.Run(() =>
        {
            bothStarted.Wait(TimeSpan.FromSeconds(30), CancellationToken.None);
            cancel.Cancel();
        }, CancellationToken.None);

        Should.Throw<OperationCanceledException>(() => SideBySideRuns.Run([run, run, run], SideBySideRuns.Lanes, cancel.Token));
        stopped.ShouldBe(2, "the two running runs stop; the third never starts");
    }

    [Fact]
    public void Spec_TrainsSideBySide_OnlySmallModels_OnTwoCoresOrMore_WithoutLoraDropout()
    {
        var spec = new TrainingSpec();
        spec.TrainsSideBySide(842_624, processors: 2).ShouldBeTrue();
        spec.TrainsSideBySide(842_624, processors: 1).ShouldBeFalse("one core: nothing to share");
        spec.TrainsSideBySide(TrainingSpec.SideBySideParameterLimit + 1, processors: 16).ShouldBeFalse("a larger model uses every core on its own");
        (spec with { SideBySide = "off" }).TrainsSideBySide(842_624, 2).ShouldBeFalse();
        (spec with { CompareWithScratch = false }).TrainsSideBySide(842_624, 2).ShouldBeFalse("one run: nothing beside it");
        (spec with { Strategy = Strategies.Lora, LoraDropout = 0.1 }).TrainsSideBySide(842_624, 2).ShouldBeFalse("dropout draws from the process-wide generator");
        (spec with { Strategy = Strategies.Lora }).TrainsSideBySide(842_624, 2).ShouldBeTrue();
        Should.Throw<SpecException>(() => (spec with { SideBySide = "on" }).Validate()).Message.ShouldContain("sideBySide");
    }
}

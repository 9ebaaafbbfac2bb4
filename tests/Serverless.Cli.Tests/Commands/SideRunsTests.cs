using System.Collections.Concurrent;
using Serverless.Model.FineTuning;
using Serverless.Model.Training;

namespace Serverless.Cli.Tests.Commands;

/// <summary>
/// A job's scratch runs trained by the trainer program in a process of its own (<c>tune-trainer side-runs</c>, shipped
/// beside this test as beside <c>tune</c>) while this process trains the candidate's.
/// </summary>
public sealed class SideRunsTests : IDisposable
{
    private static readonly TrainingSpec Spec = new()
    {
        Steps = 12, BatchSize = 4, EvalEvery = 4, WarmupSteps = 2, CheckpointEvery = 4, EarlyStoppingPatience = 0, SampleTokens = 0,
        BiasProbes = "none", DataFractions = [0.3, 1], Seed = 5,
        EvalTokens = null,   // null is not the default: the side process must get the spec exactly
    };

    private static readonly System.Text.Json.JsonSerializerOptions Web = new(System.Text.Json.JsonSerializerDefaults.Web);

    private readonly CliFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    private string Corpus() => _fixture.Write("corpus.txt",
        string.Join("\n\n", Enumerable.Range(0, 60).Select(i => $"In the beginning {i} there was text, and the text was {i % 7}.")));

    private FineTuneRequest Request(string name, bool sideBySide, Action<string, string>? written = null) =>
        new(_fixture.ModelDirectory, [Corpus()], Path.Combine(_fixture.Root, name), Spec)
        {
            SideProcess = ProcessCommand.Trainer(AppContext.BaseDirectory),
            SideBySide = sideBySide,
            CheckpointWritten = written,
        };

    [Fact]
    public void SideBySide_TrainsTheScratchRunsInAnotherProcess_LikeInTurn_AndCallsTheHostOneAtATime()
    {
        var inside = 0;
        var overlapped = false;
        var phases = new ConcurrentDictionary<string, int>();
        var copied = new ConcurrentBag<(string Phase, string Directory)>();
        void Exclusive(Action action)
        {
            overlapped |= Interlocked.Increment(ref inside) > 1;
            Thread.Sleep(1);   // widen the window a concurrent call would fall into
            action();
            Interlocked.Decrement(ref inside);
        }

        var threads = TorchSharp.torch.get_num_threads();
        var side = FineTuneJob.Run(
            Request("sbs", sideBySide: true, (phase, dir) => Exclusive(() => copied.Add((phase, dir)))),
            (phase, p) => Exclusive(() => phases[phase] = p.Step));
        TorchSharp.torch.get_num_threads().ShouldBe(threads, "the job gives its thread its intra-op threads back");
        var inTurn = FineTuneJob.Run(Request("in-turn", sideBySide: false));

        overlapped.ShouldBeFalse("the host's callbacks are never called concurrently");
        phases.Keys.Order().ShouldBe(["candidate", "candidate-f0.3", "scratch", "scratch-f0.3"]);
        phases.Values.ShouldAllBe(step => step == Spec.Steps);
        copied.Where(c => c.Phase == "scratch").Select(c => c.Directory).ShouldContain(Path.Combine(_fixture.Root, "sbs", "checkpoints", "scratch", "latest"),
            "the side process's checkpoints are handed to the host to copy, as this process's are");
        Directory.Exists(Path.Combine(_fixture.Root, "sbs", "side", "scratch")).ShouldBeTrue("the side process left the trained scratch model");

        // The same runs from the same seeds on the same data: only the order of float sums (one thread against two) differs.
        SpecIn(Path.Combine(_fixture.Root, "sbs")).ShouldBe(SpecIn(Path.Combine(_fixture.Root, "in-turn")), "the side process trains with the job's spec, field for field");
        side.ScratchTraining!.StepsRun.ShouldBe(inTurn.ScratchTraining!.StepsRun);
        side.ScratchTraining.BestStep.ShouldBe(inTurn.ScratchTraining.BestStep);
        side.ScratchTraining.TrainLoss.Select(p => p[1]).ShouldBe(inTurn.ScratchTraining.TrainLoss.Select(p => p[1]), 0.01);
        side.ScratchTraining.ValidationLoss.Select(p => p[1]).ShouldBe(inTurn.ScratchTraining.ValidationLoss.Select(p => p[1]), 0.01);
        side.Scratch!.Loss.ShouldBe(inTurn.Scratch!.Loss, 0.02);
        side.Candidate.Loss.ShouldBe(inTurn.Candidate.Loss, 0.02);
        side.DataEfficiency!.Points.Select(p => p.Scratch.Loss).ShouldBe(inTurn.DataEfficiency!.Points.Select(p => p.Scratch.Loss), 0.02);
    }

    [Fact]
    public void SideBySide_Cancelled_TheSideProcessCheckpointsToo_AndTheRerunResumesIt()
    {
        using var cancel = new CancellationTokenSource();
        var copied = new ConcurrentBag<string>();
        var request = Request("stopped", sideBySide: true, (phase, _) => copied.Add(phase)) with { Spec = Spec with { Steps = 40, CheckpointEvery = 1000, DataFractions = null } };

        Should.Throw<OperationCanceledException>(() => FineTuneJob.Run(request, (phase, p) =>
        {
            if (phase == "scratch" && p.Step >= 3)
            {
                cancel.Cancel();
            }
        }, cancel.Token));

        copied.ShouldContain("scratch", "stopping the side process writes its checkpoint, and the host copies it before the job gives up");
        using var state = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(request.OutputDirectory, "checkpoints", "scratch", "latest", "state.json")));
        var stoppedAt = state.RootElement.GetProperty("step").GetInt32();
        stoppedAt.ShouldBeGreaterThanOrEqualTo(3);

        var firstScratchStep = 0;
        var resumed = FineTuneJob.Run(request, (phase, p) =>
        {
            if (phase == "scratch" && firstScratchStep == 0)
            {
                firstScratchStep = p.Step;
            }
        });
        firstScratchStep.ShouldBe(stoppedAt + 1, "the side process resumed the scratch run from its checkpoint");
        resumed.ScratchTraining!.TrainLoss.Count.ShouldBe(40, "the resumed run keeps the losses of the steps before the stop");
    }

    [Fact]
    public void SideBySide_TheHostCannotCopyTheSideProcesssCheckpoint_TheJobFailsWithThatError()
    {
        var request = Request("uncopyable", sideBySide: true, (phase, _) =>
        {
            if (phase == "scratch")
            {
                throw new IOException("the checkpoint store refused the copy");
            }
        }) with { Spec = Spec with { DataFractions = null } };

        Should.Throw<IOException>(() => FineTuneJob.Run(request)).Message.ShouldBe("the checkpoint store refused the copy");
    }

    [Fact]
    public void Serve_ItsParentGone_StopsAtOnceWithACheckpoint()
    {
        var output = Path.Combine(_fixture.Root, "orphan");
        FineTuneJob.Run(Request("orphan-prep", sideBySide: false) with { Spec = Spec with { Steps = 1, WarmupSteps = 0, CompareWithScratch = false, DataFractions = null } });
        Directory.CreateDirectory(Path.Combine(output, "side"));
        using (var model = Serverless.Model.Gpt2.Gpt2Model.FromPretrained(_fixture.ModelDirectory))
        {
            model.Config.Save(Path.Combine(output, "side", "config.json"));
        }

        var requestPath = Path.Combine(output, "side", "request.json");
        File.WriteAllText(requestPath, System.Text.Json.JsonSerializer.Serialize(
            new SideRunsRequest(Path.Combine(_fixture.Root, "orphan-prep", "prepared"), output, (Spec with { DataFractions = null }).ToExactJson(), 32, 256, [new SideRun("scratch", null)]),
            Web));
        using var events = new StringWriter();

        var threads = TorchSharp.torch.get_num_threads();
        var code = SideRuns.Serve(requestPath, new StringReader(""), events);   // its input closed: the parent has gone
        TorchSharp.torch.set_num_threads(threads);   // Serve sets one, as the process it is meant for

        code.ShouldBe(2, events.ToString());
        events.ToString().ShouldContain("\"type\":\"checkpoint\"");
        events.ToString().ShouldNotContain("\"type\":\"progress\"", customMessage: "it stops before its first step");
        File.Exists(Path.Combine(output, "checkpoints", "scratch", "latest", "state.json")).ShouldBeTrue();
    }

    [Fact]
    public void SideBySide_TheSideProcessDies_TheJobFailsSayingWhy()
    {
        var request = Request("dies", sideBySide: true) with
        {
            SideProcess = new ProcessCommand("/bin/sh", ["-c", "echo 'killed by the test' >&2; exit 3", "sh"]),
            Spec = Spec with { DataFractions = null },
        };

        var error = Should.Throw<InvalidOperationException>(() => FineTuneJob.Run(request));
        error.Message.ShouldContain("exited (code 3) before it finished scratch: killed by the test");
    }

    private static string SpecIn(string output)
    {
        using var state = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "checkpoints", "scratch", "latest", "state.json")));
        return state.RootElement.GetProperty("spec").GetRawText();
    }

    [Fact]
    public void SideBySide_ItsProgramCannotStart_TheRunsTrainInTurn()
    {
        var request = Request("no-program", sideBySide: true) with
        {
            SideProcess = new ProcessCommand(Path.Combine(_fixture.Root, "no-such-trainer"), []),
            Spec = Spec with { DataFractions = null },
        };

        var report = FineTuneJob.Run(request);

        report.ScratchTraining!.StepsRun.ShouldBe(Spec.Steps);
        Directory.Exists(Path.Combine(request.OutputDirectory, "side", "scratch")).ShouldBeFalse("the scratch run trained here, in turn");
        ProcessCommand.TrainerIfPresent(_fixture.Root).ShouldBeNull();
        ProcessCommand.TrainerIfPresent(AppContext.BaseDirectory).ShouldNotBeNull("tune-trainer ships beside tune, and beside these tests");
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("auto", null)]
    [InlineData("1", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    public void Setting_ReadsTheVariable(string? value, bool? expected) => SideRuns.Setting(value).ShouldBe(expected);

    [Fact]
    public void Setting_Unknown_SaysWhatItTakes() =>
        Should.Throw<InvalidOperationException>(() => SideRuns.Setting("twice")).Message.ShouldContain("use 1");

    [Fact]
    public void Wanted_OnACpuForSmallModels_UnlessAsked()
    {
        SideRuns.Wanted(null, TorchSharp.torch.CPU, 1_000_000, runs: 2).ShouldBe(Environment.ProcessorCount >= 2);
        SideRuns.Wanted(null, TorchSharp.torch.CPU, 124_000_000, runs: 2).ShouldBeFalse("a large model's products keep both cores busy");
        SideRuns.Wanted(true, TorchSharp.torch.CPU, 124_000_000, runs: 2).ShouldBeTrue();
        SideRuns.Wanted(false, TorchSharp.torch.CPU, 1_000_000, runs: 2).ShouldBeFalse();
        SideRuns.Wanted(true, TorchSharp.torch.CPU, 1_000_000, runs: 0).ShouldBeFalse("no scratch runs, nothing to put beside the candidate");
    }
}

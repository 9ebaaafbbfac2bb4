using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using Serverless.Model.Training;
using static TorchSharp.torch;

namespace Serverless.Model.FineTuning;

/// <summary>A program and the arguments that come before the ones a caller adds.</summary>
/// <param name="Executable">The program (an apphost, or <c>dotnet</c>).</param>
/// <param name="Arguments">Its first arguments (for <c>dotnet</c>: the assembly).</param>
public sealed record ProcessCommand(string Executable, IReadOnlyList<string> Arguments)
{
    /// <summary>
    /// How to run again the program this process runs, with other arguments: its apphost, or <c>dotnet</c> with
    /// <paramref name="assembly"/> when the process is the <c>dotnet</c> host.
    /// </summary>
    public static ProcessCommand ThisProgram(string assembly)
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this process is unknown.");
        return Path.GetFileNameWithoutExtension(path).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? new ProcessCommand(path, [assembly])
            : new ProcessCommand(path, []);
    }

    /// <summary>The trainer program (<c>tune-trainer</c>) in <paramref name="directory"/>: its apphost, else <c>dotnet tune-trainer.dll</c>.</summary>
    public static ProcessCommand Trainer(string directory) =>
        TrainerIfPresent(directory) ?? new ProcessCommand("dotnet", [Path.Combine(directory, "tune-trainer.dll")]);

    /// <summary>As <see cref="Trainer"/>, or null when <paramref name="directory"/> has neither the apphost nor the assembly.</summary>
    public static ProcessCommand? TrainerIfPresent(string directory)
    {
        var apphost = Path.Combine(directory, OperatingSystem.IsWindows() ? "tune-trainer.exe" : "tune-trainer");
        var assembly = Path.Combine(directory, "tune-trainer.dll");
        return File.Exists(apphost) ? new ProcessCommand(apphost, [])
            : File.Exists(assembly) ? new ProcessCommand("dotnet", [assembly])
            : null;
    }
}

/// <summary>One scratch run for the side process: its phase and, for the data-efficiency curve, its share of the training data.</summary>
/// <param name="Phase">The phase (<c>scratch</c>, <c>scratch-f0.1</c>): its checkpoints and progress go by this name.</param>
/// <param name="Fraction">The share of the training documents, or null for all of them.</param>
public sealed record SideRun(string Phase, double? Fraction);

/// <summary>What the side process is asked to train (<c>side/request.json</c> under the job's output directory).</summary>
/// <param name="Prepared">The prepared shards.</param>
/// <param name="Output">The job's output directory (checkpoints go to <c>checkpoints/{phase}</c>, models to <c>side/{phase}</c>).</param>
/// <param name="Spec">The run spec, as <see cref="TrainingSpec.ToJson"/> writes it.</param>
/// <param name="BlockSize">The training window, for the curve's subsets' minimum size.</param>
/// <param name="EndOfText">The document separator, for the curve's subsets.</param>
/// <param name="Runs">The runs, in order.</param>
public sealed record SideRunsRequest(string Prepared, string Output, string Spec, int BlockSize, int EndOfText, IReadOnlyList<SideRun> Runs);

/// <summary>
/// A job's scratch runs trained by a process of their own (<em>side by side</em>) while this one trains the
/// candidate's: on a CPU, a small model's matrix products are too small to keep two cores busy, so two runs with one
/// libtorch intra-op thread each finish sooner than the same two in turn on both. Two processes rather than two
/// training threads, because each then has its own garbage collector: TorchSharp passes temporary <c>Scalar</c>s to
/// native code without keeping them alive, so a collection started by another, busily allocating thread can free one
/// mid-call (the model's own hot calls keep theirs alive, see <c>Scalars</c>; libtorch's are out of our reach).
/// </summary>
/// <remarks>
/// The side process (<see cref="Serve"/>) writes one JSON line per event to its standard output — progress,
/// checkpoint written, run done (the trained model is in <c>side/{phase}/</c>), error — and reads from its standard
/// input <c>ack</c> (a checkpoint has been copied; it waits for that before training on, so a copy never races the
/// next checkpoint), <c>threads N</c> (the intra-op threads to use from its next step: this process's own while it
/// waits for the side process) and <c>stop</c> (checkpoint and exit, as a cancelled run does). A closed input stops it
/// as well, at its next step, so it ends soon after this process does, however that ends; it ignores SIGINT and
/// SIGTERM (a terminal's Ctrl+C reaches the whole process group), so that it stops through this process, whose copy
/// of its last checkpoint is what a retry resumes from. The side process's progress and checkpoints reach the
/// callbacks given to <see cref="Start"/> on another thread (<see cref="FineTuneJob"/> passes callbacks that take the
/// lock its own calls take, so a host's callbacks are never called concurrently), interleaved with this process's
/// phases. The fused AdamW update (<c>FusedCpuUpdate</c>) still
/// uses every core for its few milliseconds a step.
/// </remarks>
public sealed class SideRuns : IDisposable
{
    /// <summary>The largest model (parameters) trained side by side when the caller leaves it to the job.</summary>
    /// <value>20 M: measured, the second core is worth 1.37× to a 0.84 M model and 1.7–1.8× to a 4.9 M one, so two runs on one core each pay less as models grow.</value>
    public const long AutoLimit = 20_000_000;

    /// <summary>The first argument that makes the trainer program serve as the side process.</summary>
    public const string Verb = "side-runs";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,   // a run with no evaluation has an infinite best loss
    };

    private readonly Process _process;
    private readonly string _directory;
    private readonly Action<string, TrainingProgress>? _progress;
    private readonly Action<string, string>? _checkpointWritten;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Message>> _runs;
    private readonly Queue<string> _errors = new();
    private readonly int _threads;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _errorsEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _reduced;
    private bool _disposed;

    private SideRuns(Process process, string directory, IReadOnlyList<SideRun> runs, Action<string, TrainingProgress>? progress, Action<string, string>? checkpointWritten)
    {
        _process = process;
        _directory = directory;
        _progress = progress;
        _checkpointWritten = checkpointWritten;
        _runs = new ConcurrentDictionary<string, TaskCompletionSource<Message>>(runs.Select(r => KeyValuePair.Create(r.Phase, new TaskCompletionSource<Message>(TaskCreationOptions.RunContinuationsAsynchronously))));
        _threads = Math.Min(get_num_threads(), Environment.ProcessorCount);   // libtorch counts physical cores, not the container's share
    }

    /// <summary>The environment variable that turns side by side on (<c>1</c>) or off (<c>0</c>); unset or <c>auto</c>, the job decides.</summary>
    public const string Variable = "TUNE_SIDE_BY_SIDE";

    /// <summary>Reads <see cref="Variable"/>'s value: true, false, or null (auto).</summary>
    public static bool? Setting(string? value) => value?.Trim().ToUpperInvariant() switch
    {
        null or "" or "AUTO" => null,
        "1" or "TRUE" or "ON" or "YES" => true,
        "0" or "FALSE" or "OFF" or "NO" => false,
        _ => throw new InvalidOperationException($"{Variable} is '{value}': use 1 (scratch runs in a process of their own, beside the candidate's), 0 (one process, runs in turn) or auto."),
    };

    /// <summary>Whether a job trains its scratch runs side by side: asked (<paramref name="sideBySide"/>), or left to it: a CPU with two cores or more and a model of at most <see cref="AutoLimit"/> parameters.</summary>
    public static bool Wanted(bool? sideBySide, Device device, long parameters, int runs)
    {
        ArgumentNullException.ThrowIfNull(device);
        return runs > 0 && device.type == TorchSharp.DeviceType.CPU && (sideBySide ?? (Environment.ProcessorCount >= 2 && parameters <= AutoLimit));
    }

    /// <summary>
    /// Starts <paramref name="command"/> <c>side-runs {request}</c> on the runs, and has libtorch use one intra-op thread
    /// on this thread while both train (libtorch keeps the count per thread: call the rest from this thread; threads
    /// that first use libtorch meanwhile start with one too).
    /// </summary>
    public static SideRuns Start(ProcessCommand command, SideRunsRequest request, Gpt2Config config,
        Action<string, TrainingProgress>? progress, Action<string, string>? checkpointWritten)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(config);
        var directory = Path.Combine(request.Output, "side");
        Directory.CreateDirectory(directory);
        config.Save(Path.Combine(directory, "config.json"));
        var requestPath = Path.Combine(directory, "request.json");
        File.WriteAllText(requestPath, JsonSerializer.Serialize(request, Json));
        foreach (var run in request.Runs)
        {
            if (Directory.Exists(Path.Combine(directory, run.Phase)))
            {
                Directory.Delete(Path.Combine(directory, run.Phase), recursive: true);   // a model from an earlier attempt is not this one's result
            }
        }

        var start = new ProcessStartInfo(command.Executable)
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var argument in command.Arguments.Append(Verb).Append(requestPath))
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["OMP_NUM_THREADS"] = "1";
        if (NativeRuntime.TrainerMallocTunables is { } tunables)
        {
            start.Environment["GLIBC_TUNABLES"] = tunables;   // malloc keeps freed memory from the process's start
        }
        var process = new Process { StartInfo = start };
        var side = new SideRuns(process, directory, request.Runs, progress, checkpointWritten);
        process.OutputDataReceived += (_, e) => side.Received(e.Data);
        process.ErrorDataReceived += (_, e) => side.ReceivedError(e.Data);
        process.Start();
        process.StandardInput.AutoFlush = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        set_num_threads(1);
        side._reduced = true;
        return side;
    }

    /// <summary>
    /// Waits for <paramref name="phase"/>'s run and returns its result and its trained model (the caller disposes it).
    /// While this process waits, the side process uses this process's intra-op threads, from its next step.
    /// </summary>
    public (TrainingResult Result, long Trainable, Gpt2Model Model) Take(string phase, CancellationToken cancellation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var run = _runs.TryGetValue(phase, out var found) ? found.Task : throw new ArgumentException($"The side process does not train {phase}.", nameof(phase));
        if (!run.IsCompleted)
        {
            Send($"threads {_threads}");
            try
            {
                run.WaitAsync(cancellation).GetAwaiter().GetResult();
            }
            catch (Exception) when (cancellation.IsCancellationRequested)
            {
                // Stopped: the side process's end (it is told to stop on Dispose) is not the job's failure.
                cancellation.ThrowIfCancellationRequested();
                throw;
            }
            finally
            {
                Send("threads 1");
            }
        }

        var done = run.GetAwaiter().GetResult();
        if (_runs.Values.All(r => r.Task.IsCompletedSuccessfully))
        {
            Restore();   // nothing left for the side process to train: this process gets its threads back
        }

        return (done.Result!, done.Trainable, Gpt2Model.FromPretrained(Path.Combine(_directory, phase)));
    }

    /// <summary>
    /// Called on this process's training thread between steps: once the side process has finished, this one gets its
    /// threads back; when one of its runs has failed, this throws that failure now rather than after this process's run.
    /// </summary>
    public void BetweenSteps()
    {
        if (_runs.Values.FirstOrDefault(r => r.Task.IsFaulted) is { } failed)
        {
            failed.Task.GetAwaiter().GetResult();
        }

        if (_reduced && _exited.Task.IsCompleted)
        {
            Restore();
        }
    }

    /// <summary>
    /// Stops the side process if it is still training: it writes a checkpoint, as a cancelled run does, which is handed
    /// to the checkpoint callback like the others. One that has not ended after 20 s is killed (its last copied
    /// checkpoint is then what a retry resumes from). Gives this thread its threads back.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_exited.Task.IsCompleted)
        {
            Send("stop");
            if (!_exited.Task.Wait(TimeSpan.FromSeconds(20)))
            {
                try
                {
                    _process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // gone meanwhile
                }

                _exited.Task.Wait(TimeSpan.FromSeconds(10));
            }
        }

        Restore();
        if (_exited.Task.IsCompleted)
        {
            _process.Dispose();   // not before its output has been read to the end: the reader would find it closed
        }
    }

    private void Restore()
    {
        if (_reduced)
        {
            set_num_threads(_threads);
            _reduced = false;
        }
    }

    private void Send(string line)
    {
        lock (_process)
        {
            try
            {
                if (!_exited.Task.IsCompleted)
                {
                    _process.StandardInput.WriteLine(line);
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // The side process has gone; its end is reported by its output closing.
            }
        }
    }

    private void ReceivedError(string? line)
    {
        try
        {
            Remember(line);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // stderr gone: nothing to keep
        }
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            _errorsEnded.TrySetResult();
            return;
        }

        Console.Error.WriteLine($"[side] {line}");
        lock (_errors)
        {
            _errors.Enqueue(line);
            while (_errors.Count > 20)
            {
                _errors.Dequeue();
            }
        }
    }

    // Process raises this on a thread of its own, where an exception would end this process: none may escape.
    private void Received(string? line)
    {
        try
        {
            Handle(line);
        }
        catch (Exception e)
        {
            foreach (var run in _runs.Values)
            {
                run.TrySetException(new InvalidOperationException($"reading the side process's output failed: {e.Message}", e));
            }

            _exited.TrySetResult();
        }
    }

    private void Handle(string? line)
    {
        if (line is null)
        {
            Ended();
            return;
        }

        Message? message;
        try
        {
            message = line.StartsWith('{') ? JsonSerializer.Deserialize<Message>(line, Json) : null;
        }
        catch (JsonException)
        {
            message = null;
        }

        if (message?.Phase is not { } phase)
        {
            ReceivedError(line);   // not ours: something native printed
            return;
        }

        switch (message.Type)
        {
            case "progress" when message.Progress is { } p:
                Relay(phase, () => _progress?.Invoke(phase, p));
                break;
            case "checkpoint" when message.Directory is { } directory:
                Relay(phase, () => _checkpointWritten?.Invoke(phase, directory));
                Send("ack");
                break;
            case "done" or "error" when _runs.TryGetValue(phase, out var run):
                if (message.Type == "done")
                {
                    run.TrySetResult(message);
                }
                else
                {
                    run.TrySetException(message.Failure());
                }

                break;
        }
    }

    /// <summary>
    /// Calls a host callback for the side process. A callback that fails (a checkpoint that could not be copied) fails
    /// that run, as it would fail it in this process, and stops the side process.
    /// </summary>
    private void Relay(string phase, Action callback)
    {
        try
        {
            callback();
        }
        catch (Exception e)
        {
            if (_runs.TryGetValue(phase, out var run))
            {
                run.TrySetException(e);
            }

            Send("stop");
        }
    }

    private void Ended()
    {
        // WaitForExit() without a timeout would wait for this very reader to finish; stderr's last lines may still be on their way.
        int? code = _process.WaitForExit(30_000) ? _process.ExitCode : null;
        _errorsEnded.Task.Wait(TimeSpan.FromSeconds(5));
        string tail;
        lock (_errors)
        {
            tail = string.Join(" / ", _errors.TakeLast(3));
        }

        var how = code switch
        {
            null => "did not exit after its output closed",
            137 => "was killed (code 137: SIGKILL, which is how the kernel ends a process out of memory)",
            { } c => $"exited (code {c.ToString(System.Globalization.CultureInfo.InvariantCulture)})",
        };
        foreach (var (phase, run) in _runs)
        {
            run.TrySetException(new InvalidOperationException(
                $"the process training the scratch runs beside the candidate {how} before it finished {phase}{(tail.Length > 0 ? $": {tail}" : "")}."));
        }

        _exited.TrySetResult();
    }

    /// <summary>
    /// The side process: trains the request's runs in order, one intra-op thread unless told otherwise, writing events
    /// to <paramref name="output"/> and reading commands from <paramref name="input"/>. Returns the exit code.
    /// </summary>
    public static int Serve(string requestPath, TextReader input, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(requestPath);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        var request = JsonSerializer.Deserialize<SideRunsRequest>(File.ReadAllText(requestPath), Json)
            ?? throw new InvalidDataException($"{requestPath} is empty.");
        var directory = Path.GetDirectoryName(Path.GetFullPath(requestPath))!;
        var spec = TrainingSpec.Parse(request.Spec, requestPath);
        var config = Gpt2Config.Load(Path.Combine(directory, "config.json"));
        set_num_threads(1);
        var threads = 1;
        var wanted = 1;
        using var stop = new CancellationTokenSource();
        using var acks = new SemaphoreSlim(0);
        var listener = new Thread(() =>
        {
            while (input.ReadLine() is { } line)
            {
                if (line == "ack")
                {
                    acks.Release();
                }
                else if (line.StartsWith("threads ", StringComparison.Ordinal) && int.TryParse(line.AsSpan(8), out var n) && n > 0)
                {
                    Volatile.Write(ref wanted, n);
                }
                else if (line == "stop")
                {
                    stop.Cancel();
                }
            }

            stop.Cancel();          // the parent has gone: stop, and never wait for an ack again
            acks.Release(1 << 20);
        }) { IsBackground = true, Name = "side-runs input" };
        listener.Start();

        void Send(Message message)
        {
            lock (output)
            {
                try
                {
                    output.WriteLine(JsonSerializer.Serialize(message, Json));
                    output.Flush();
                }
                catch (IOException)
                {
                    stop.Cancel();   // the parent has gone (a broken pipe): nobody to tell, stop
                }
            }
        }

        using var train = TokenShardReader.Open(Path.Combine(request.Prepared, DatasetPreparer.TrainFile));
        using var validation = TokenShardReader.Open(Path.Combine(request.Prepared, DatasetPreparer.ValidationFile));
        NestedSubsets? subsets = null;
        foreach (var run in request.Runs)
        {
            try
            {
                ITokenSource data = run.Fraction is { } fraction
                    ? FineTuneJob.CurveSubset(subsets ??= new NestedSubsets(train, request.EndOfText, spec.SplitSeed), fraction, request.BlockSize)
                    : train;
                using var model = new Gpt2Model(config, spec.Seed);
                var (result, trainable) = FineTuneJob.TrainScratch(model, spec, data, validation, new TrainingOptions
                {
                    CheckpointDirectory = Path.Combine(request.Output, "checkpoints", run.Phase),
                    Cancellation = stop.Token,
                    Progress = p =>
                    {
                        if (Volatile.Read(ref wanted) is var n && n != threads)
                        {
                            set_num_threads(threads = n);
                        }

                        Send(new Message("progress", run.Phase) { Progress = p });
                    },
                    CheckpointWritten = dir =>
                    {
                        Send(new Message("checkpoint", run.Phase) { Directory = dir });
                        acks.Wait();
                    },
                });
                var target = Path.Combine(directory, run.Phase);
                var temp = target + ".tmp";
                if (Directory.Exists(temp))
                {
                    Directory.Delete(temp, recursive: true);
                }

                model.SavePretrained(temp);
                Directory.Move(temp, target);
                Send(new Message("done", run.Phase) { Result = result, Trainable = trainable });
            }
            catch (OperationCanceledException)
            {
                return 2;
            }
            catch (Exception e)
            {
                var io = e as IOException ?? e.InnerException as IOException;
                Send(new Message("error", run.Phase) { Error = e.GetType().Name, Text = e.Message, IoCode = io?.HResult });
                Console.Error.WriteLine(e);
                return 1;
            }
        }

        return 0;
    }

    /// <summary>One line from the side process.</summary>
    private sealed record Message(string Type, string? Phase)
    {
        public TrainingProgress? Progress { get; init; }

        public string? Directory { get; init; }

        public TrainingResult? Result { get; init; }

        public long Trainable { get; init; }

        public string? Error { get; init; }

        public string? Text { get; init; }

        public int? IoCode { get; init; }

        /// <summary>The error as this process would have seen it, for the kinds a trainer tells apart.</summary>
        public Exception Failure() => Error switch
        {
            nameof(TrainingDivergedException) => new TrainingDivergedException(Text ?? "training diverged"),
            nameof(OutOfMemoryException) or nameof(InsufficientMemoryException) => new InsufficientMemoryException($"the scratch runs' process ran out of memory: {Text}"),
            _ when Text?.Contains("out of memory", StringComparison.OrdinalIgnoreCase) == true => new InsufficientMemoryException($"the scratch runs' process ran out of memory: {Error}: {Text}"),
            _ when IoCode is { } code => new IOException($"the scratch runs' process failed in {Phase}: {Text}", code),
            _ => new InvalidOperationException($"the scratch runs' process failed in {Phase}: {Error}: {Text}"),
        };
    }
}

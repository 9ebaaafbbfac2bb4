using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Serverless.Model.Data;
using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Training;
using Spectre.Console;
using static TorchSharp.torch;

namespace Serverless.Cli.Commands;

/// <summary>
/// <c>tune bench</c>: measured matmul rates of this machine, then training tokens/s and MFU (6·N·tokens/s over the
/// measured matmul rate of the precision the run multiplies in: bfloat16 runs against the bfloat16 rate, float32 runs
/// against the float32 rate; a bf16 run also reports its MFU against the float32 rate) for the demo model and the
/// GPT-2 124M shape, and cached generation tokens/s.
/// A benchmark, not a test: it reports numbers, all from one run, so they are comparable with each other.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var steps = new Option<int>("--steps") { Description = "Timed training steps per model (after two warm-up steps).", DefaultValueFactory = _ => 5 };
        steps.Validators.Add(r =>
        {
            if (r.GetValue(steps) < 1)
            {
                r.AddError("--steps must be 1 or more.");
            }
        });
        var skipLarge = new Option<bool>("--skip-124m") { Description = "Leave out the GPT-2 124M shape (it takes a minute or two)." };
        var json = new Option<bool>("--json") { Description = "Print the results as one JSON object." };
        var breakdown = new Option<bool>("--breakdown") { Description = "Also print where a training step's time goes: forward, backward, optimizer, other." };
        var models = new Option<string[]>("--models") { Description = "Which models to measure: demo-tiny, small (the `small` pre-training size, byte-level), gpt2-124M.", DefaultValueFactory = _ => ["demo-tiny", "gpt2-124M"], AllowMultipleArgumentsPerToken = true };
        models.AcceptOnlyFromAmong("demo-tiny", "small", "gpt2-124M");
        var precision = new Option<string>("--precision") { Description = "Training arithmetic: auto (bf16 where the CPU has it), fp32 or bf16.", DefaultValueFactory = _ => "auto" };
        precision.AcceptOnlyFromAmong("auto", "fp32", "bf16");
        var command = new Command("bench", "Measure matmul GFLOP/s, training tokens/s and MFU, and generation tokens/s on this machine.") { steps, skipLarge, json, precision, breakdown, models };
        var runs = new Option<int>("--runs") { Description = "Pipeline runs to time.", DefaultValueFactory = _ => 10 };
        var pipelineJson = new Option<bool>("--json") { Description = "Print the results as one JSON object." };
        var pipeline = new Command("pipeline", "Measure the embedded pipeline: file → dispatch and ModelPublished → subscriber latency (p50, p99), bus throughput.") { runs, pipelineJson };
        pipeline.SetAction(parse =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var results = PipelineBench.Run(parse.GetValue(runs), parse.GetValue(pipelineJson) ? null : writer);
            if (parse.GetValue(pipelineJson))
            {
                writer.WriteLine(JsonSerializer.Serialize(results));
            }

            return 0;
        });
        command.Subcommands.Add(pipeline);

        var sizes = new Option<int[]>("--sizes") { Description = "History sizes: finished jobs and registry versions (spread over size / 10 models, 10 to 1,000).", DefaultValueFactory = _ => [100, 1000, 10000], AllowMultipleArgumentsPerToken = true };
        sizes.Validators.Add(r =>
        {
            if (r.GetValue(sizes) is { } given && given.Any(n => n is < 10 or > 100_000))
            {
                r.AddError("--sizes are between 10 and 100,000.");
            }
        });
        var idle = new Option<int>("--idle-seconds") { Description = "How long idle `tune up` is watched per size (the trainer watch and the schedule run every minute).", DefaultValueFactory = _ => 65 };
        var scaleJson = new Option<bool>("--json") { Description = "Print the results as one JSON object." };
        var drain = new Option<int>("--dispatch-jobs") { Description = "One-step jobs (real tiny trainers, 2 at a time) dropped at once to measure dispatch throughput; 0 skips it.", DefaultValueFactory = _ => 500 };
        var scale = new Command("scale", "Measure how cost grows with history: idle tune up (CPU, blob calls), listings, publish depth, watch and schedule passes, dispatch throughput, bus receivers; writes artifacts/bench/scale.json.") { sizes, idle, drain, scaleJson };
        scale.SetAction(parse =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var results = ScaleBench.Run(parse.GetValue(sizes)!, TimeSpan.FromSeconds(Math.Max(5, parse.GetValue(idle))), parse.GetValue(drain), parse.GetValue(scaleJson) ? null : writer);
            Directory.CreateDirectory(Path.Combine("artifacts", "bench"));
            var path = Path.Combine("artifacts", "bench", "scale.json");
            File.WriteAllText(path, results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            writer.WriteLine(parse.GetValue(scaleJson) ? results.ToJsonString() : $"Wrote {path}.");
            return 0;
        });
        command.Subcommands.Add(scale);
        command.SetAction(parse =>
        {
            var writer = parse.InvocationConfiguration.Output;
            var chosen = parse.GetValue(models)!.Where(m => m != "gpt2-124M" || !parse.GetValue(skipLarge)).ToArray();
            var results = Run(parse.GetValue(steps), chosen, parse.GetValue(precision)!, parse.GetValue(json) ? null : writer, parse.GetValue(breakdown));
            if (parse.GetValue(json))
            {
                writer.WriteLine(JsonSerializer.Serialize(results));
            }

            return 0;
        });
        return command;
    }

    private static Dictionary<string, object> Run(int steps, string[] models, string precision, TextWriter? log, bool breakdown)
    {
        var results = new Dictionary<string, object>
        {
            ["threads"] = get_num_threads(),
            ["matmul_f32_gflops"] = MatmulGflops(ScalarType.Float32),
            ["matmul_bf16_gflops"] = MatmulGflops(ScalarType.BFloat16),
        };
        var computeType = new TrainingSpec { Precision = precision }.ComputeType;
        var used = computeType == ScalarType.BFloat16 ? "bf16" : "fp32";
        var f32 = (double)results["matmul_f32_gflops"] * 1e9;
        var peak = used == "bf16" ? (double)results["matmul_bf16_gflops"] * 1e9 : f32;
        results["precision"] = used;
        results["mfu_against"] = used == "bf16" ? "matmul_bf16_gflops" : "matmul_f32_gflops";
        log?.WriteLine($"matmul: float32 {results["matmul_f32_gflops"]:F0} GFLOP/s, bfloat16 {results["matmul_bf16_gflops"]:F0} GFLOP/s ({results["threads"]} threads); training in {used}, MFU against the {used} rate");

        var shapes = new List<(string Name, Gpt2Config Config, int Batch, int Block)>
        {
            ("demo-tiny", Pretraining.ConfigFor("tiny", "bytes"), 16, 128),
            ("small", Pretraining.ConfigFor("small", "bytes"), 16, 256),
            ("gpt2-124M", Gpt2Config.Gpt2Small, 4, 64),
        }.Where(s => models.Contains(s.Name)).ToList();
        var phases = new Table().AddColumns("model", "ms/step", "forward", "backward", "optimizer", "other");
        var levers = new List<string>();
        var measuresLevers = breakdown || log is null;   // only --breakdown and --json show them

        var table = new Table().AddColumns("model", "parameters", "batch × seq", "forward tokens/s", "train tokens/s", "ms/step", $"MFU (vs {used} matmul)", "generate tokens/s");
        foreach (var (name, config, batch, block) in shapes)
        {
            var forward = Forward(config, batch, block);
            var (tokensPerSecond, msPerStep, parameters, mfu, times) = Train(config, batch, block, steps, peak, precision);
            var generation = Generate(config);
            var result = new Dictionary<string, object>
            {
                ["parameters"] = parameters,
                ["batch"] = batch,
                ["sequence"] = block,
                ["forward_tokens_per_second"] = forward,
                ["train_tokens_per_second"] = tokensPerSecond,
                ["ms_per_step"] = msPerStep,
                ["breakdown_ms"] = new Dictionary<string, double>
                {
                    ["forward"] = times.Forward, ["backward"] = times.Backward, ["optimizer"] = times.Optimizer, ["other"] = times.Other, ["step"] = times.Total,
                },
                ["mfu"] = mfu,
                ["mfu_vs_f32"] = mfu * peak / f32,
                ["generate_tokens_per_second"] = generation,
            };
            if (measuresLevers)
            {
                var (fusedMs, unfusedMs) = (OptimizerMs(config, fused: true), OptimizerMs(config, fused: false));
                var (afterZeroedMs, afterReleasedMs, zeroingMs) = GradientRelease(config, batch, block, computeType);
                result["optimizer_fused_ms"] = fusedMs;
                result["optimizer_unfused_ms"] = unfusedMs;
                result["backward_after_zeroed_grads_ms"] = afterZeroedMs;
                result["backward_after_released_grads_ms"] = afterReleasedMs;
                result["zero_grads_ms"] = zeroingMs;
                var lever = $"{name}: fused AdamW {fusedMs:N1} ms, libtorch's element-wise {unfusedMs:N1} ms; backward after released gradients {afterReleasedMs:N0} ms, after zeroed ones {afterZeroedMs:N0} ms (+ {zeroingMs:N1} ms to zero them)";
                if (computeType is { } dtype)
                {
                    var (copiesMs, castsMs) = WeightCopyLever(config, batch, block, dtype);
                    result["step_with_weight_copies_ms"] = copiesMs;
                    result["step_with_weight_casts_ms"] = castsMs;
                    lever += $"; a step with {used} weight copies {copiesMs:N0} ms, casting the weights every forward {castsMs:N0} ms";
                }

                var floor = MatmulFloor(config, batch, block, computeType ?? ScalarType.Float32);
                result["matmul_floor_ms"] = new Dictionary<string, double> { ["forward"] = floor.Forward, ["backward"] = floor.Backward };
                result["matmul_floor_gflops"] = floor.Gflops;
                lever += $"; the step's matrix products alone (projections and head, at its shapes, in {used}): forward {floor.Forward:N0} ms, backward {floor.Backward:N0} ms ({floor.Gflops:N0} GFLOP/s)";
                levers.Add(lever);
            }

            results[name] = result;
            phases.AddRow(name, times.Total.ToString("N0"), Share(times.Forward, times.Total), Share(times.Backward, times.Total), Share(times.Optimizer, times.Total), Share(times.Other, times.Total));
            table.AddRow(name, parameters.ToString("N0"), $"{batch} × {block}", forward.ToString("N0"), tokensPerSecond.ToString("N0"), msPerStep.ToString("N0"), mfu.ToString("P1"), generation.ToString("N1"));
        }

        if (log is not null)
        {
            Consoles.For(log).Write(table);
            if (breakdown)
            {
                log.WriteLine("Where a training step's time goes (mean of the timed steps; forward includes the loss, optimizer the clipping):");
                Consoles.For(log).Write(phases);
                log.WriteLine("Levers, each measured both ways in this run:");
                levers.ForEach(log.WriteLine);
            }
        }

        return results;
    }

    private static string Share(double ms, double total) => $"{ms:N0} ms ({ms / total:P0})";

    /// <summary>The best of five one-second runs of a 2048² matmul, after a warm-up: the machine's sustained rate.</summary>
    private static double MatmulGflops(ScalarType dtype)
    {
        const int n = 2048;
        using var a = randn(n, n).to(dtype);
        using var b = randn(n, n).to(dtype);
        var best = 0.0;
        for (var round = 0; round < 6; round++)
        {
            var watch = Stopwatch.StartNew();
            var runs = 0;
            while (watch.Elapsed.TotalSeconds < 1)
            {
                using var c = a.matmul(b);
                runs++;
            }

            if (round > 0)
            {
                best = Math.Max(best, 2.0 * n * n * n * runs / watch.Elapsed.TotalSeconds / 1e9);
            }
        }

        return best;
    }

    private static (double TokensPerSecond, double MsPerStep, long Parameters, double Mfu, StepTimes Times) Train(Gpt2Config config, int batch, int block, int steps, double peakFlops, string precision)
    {
        var random = new Random(1);
        var tokens = new ArrayTokenSource(Enumerable.Range(0, 200_000).Select(_ => random.Next(config.VocabSize)).ToArray());
        using var model = new Gpt2Model(config, seed: 1);
        var spec = new TrainingSpec
        {
            Steps = steps + 2, BatchSize = batch, BlockSize = block, WarmupSteps = 1, EvalEvery = 1_000_000, CheckpointEvery = 1_000_000,
            EarlyStoppingPatience = 0, EvalTokens = block + 1, Precision = precision,
        };
        var watch = new Stopwatch();
        var timed = new List<StepTimes>();
        TrainingLoop.Train(model, StrategySetup.Apply(model, spec), spec, tokens, new ArrayTokenSource(tokens.Read(block + 1)), new TrainingOptions
        {
            Progress = p =>
            {
                if (p.Step == 2)
                {
                    watch.Start();   // the first two steps warm up allocators and kernels
                }
                else if (p.Step > 2 && p.Times is { } t)
                {
                    timed.Add(t);
                }
            },
        });
        watch.Stop();
        var tokensPerSecond = (double)steps * batch * block / watch.Elapsed.TotalSeconds;
        var parameters = model.ParameterCount();
        var mean = new StepTimes(timed.Average(t => t.Forward), timed.Average(t => t.Backward), timed.Average(t => t.Optimizer), timed.Average(t => t.Total));
        return (tokensPerSecond, watch.Elapsed.TotalMilliseconds / steps, parameters, 6.0 * parameters * tokensPerSecond / peakFlops, mean);
    }

    /// <summary>
    /// Milliseconds of one AdamW step over every parameter (random gradients), fused or with libtorch's element-wise
    /// operations: the median of five steps after one warm-up step.
    /// </summary>
    private static double OptimizerMs(Gpt2Config config, bool fused)
    {
        using var model = new Gpt2Model(config, seed: 1);
        using var optimizer = new AdamW(model.named_parameters().Select(p => (p.name, p.parameter))) { Fused = fused };
        var times = new List<double>();
        for (var step = 0; step < 6; step++)
        {
            using (var scope = NewDisposeScope())
            {
                // Gradients of Σ p·r are r: random gradients for every parameter.
                model.parameters().Select(p => (p * randn_like(p)).sum()).Aggregate((a, b) => a + b).backward();
            }

            var watch = Stopwatch.StartNew();
            optimizer.Step(1e-4, 0.1);
            times.Add(watch.Elapsed.TotalMilliseconds);
        }

        return times.Skip(1).Order().ElementAt(2);
    }

    /// <summary>
    /// What releasing the gradients after a step (AdamW does) saves against zeroing them: the median backward pass after
    /// each (zeroed gradients are added to, released ones are stored), and the median zeroing pass. The two are
    /// interleaved in pairs of steps, timing the second of each pair, so both see the machine in the same mood.
    /// </summary>
    private static (double AfterZeroed, double AfterReleased, double Zeroing) GradientRelease(Gpt2Config config, int batch, int block, ScalarType? computeType)
    {
        using var model = new Gpt2Model(config, seed: 1) { ComputeType = computeType };
        var parameters = model.parameters().ToArray();
        using var input = randint(0, config.VocabSize, [batch, block], dtype: ScalarType.Int64);
        using var target = randint(0, config.VocabSize, [batch, block], dtype: ScalarType.Int64);
        var (zeroed, released, zeroing) = (new List<double>(), new List<double>(), new List<double>());
        for (var step = 0; step < 20; step++)
        {
            var release = step / 2 % 2 == 1;
            using var scope = NewDisposeScope();
            using (var loss = model.Loss(input, target))
            {
                var watch = Stopwatch.StartNew();
                loss.backward();
                if (step >= 4 && step % 2 == 1)
                {
                    (release ? released : zeroed).Add(watch.Elapsed.TotalMilliseconds);
                }
            }

            using var noGrad = no_grad();
            var clearing = Stopwatch.StartNew();
            foreach (var parameter in parameters)
            {
                if (release)
                {
                    parameter.grad = null;
                }
                else
                {
                    parameter.grad?.zero_();
                }
            }

            if (!release && step >= 4)
            {
                zeroing.Add(clearing.Elapsed.TotalMilliseconds);
            }
        }

        return (Median(zeroed), Median(released), Median(zeroing));
    }

    /// <summary>
    /// What keeping low-precision weight copies (<see cref="WeightCopies"/>, the trainer's default) saves against casting
    /// the weights on every forward: the median step (forward, backward, AdamW) each way, interleaved in pairs of
    /// steps, timing the second of each pair. Making and dropping the copies between pairs is not timed.
    /// </summary>
    private static (double WithCopies, double WithCasts) WeightCopyLever(Gpt2Config config, int batch, int block, ScalarType dtype)
    {
        using var model = new Gpt2Model(config, seed: 1) { ComputeType = dtype };
        using var optimizer = new AdamW(model.named_parameters().Select(p => (p.name, p.parameter)));
        using var input = randint(0, config.VocabSize, [batch, block], dtype: ScalarType.Int64);
        using var target = randint(0, config.VocabSize, [batch, block], dtype: ScalarType.Int64);
        var (withCopies, withCasts) = (new List<double>(), new List<double>());
        WeightCopies? copies = null;
        try
        {
            for (var step = 0; step < 20; step++)
            {
                var useCopies = step / 2 % 2 == 1;
                if (useCopies != copies is not null)
                {
                    optimizer.UseCopies(null);
                    copies?.Dispose();
                    copies = useCopies ? WeightCopies.Attach(model, dtype, trainable: true) : null;
                    optimizer.UseCopies(copies?.ByName);
                }

                using var scope = NewDisposeScope();
                var watch = Stopwatch.StartNew();
                using (var loss = model.Loss(input, target))
                {
                    loss.backward();
                }

                optimizer.Step(1e-4, 0.1);
                if (step >= 4 && step % 2 == 1)
                {
                    (useCopies ? withCopies : withCasts).Add(watch.Elapsed.TotalMilliseconds);
                }
            }
        }
        finally
        {
            optimizer.UseCopies(null);
            copies?.Dispose();
        }

        return (Median(withCopies), Median(withCasts));
    }

    /// <summary>
    /// The floor under a training step at this machine's matmul speed for the step's own shapes: every projection's and
    /// the output head's matrix products alone, in the step's dtype, on random operands: the forward's x·Wᵀ, and the
    /// backward's two, the input's gradient dY·W and the weight's dYᵀ·X. Attention's products (a few per cent of the
    /// FLOPs at these lengths) are left out. The best of five rounds after a warm-up, and the GFLOP/s they ran at.
    /// </summary>
    private static (double Forward, double Backward, double Gflops) MatmulFloor(Gpt2Config config, int batch, int block, ScalarType dtype)
    {
        var (c, tokens) = ((long)config.NEmbd, (long)batch * block);
        var layer = new[] { (c, 3 * c), (c, c), (c, (long)config.InnerSize), ((long)config.InnerSize, c) };
        var shapes = Enumerable.Repeat(layer, config.NLayer).SelectMany(s => s).Append((c, (long)config.VocabSize)).ToList();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var operands = shapes.Distinct().ToDictionary(s => s, s =>
            (X: randn(tokens, s.Item1).to(dtype), W: randn(s.Item2, s.Item1).to(dtype), DY: randn(tokens, s.Item2).to(dtype)));
        var (forward, backward) = (double.MaxValue, double.MaxValue);
        for (var round = 0; round < 6; round++)
        {
            var watch = Stopwatch.StartNew();
            foreach (var shape in shapes)
            {
                var (x, w, _) = operands[shape];
                using var y = nn.functional.linear(x, w);
            }

            var forwardMs = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
            foreach (var shape in shapes)
            {
                var (x, w, dy) = operands[shape];
                using var dx = dy.matmul(w);
                using var dyT = dy.t();
                using var dw = dyT.matmul(x);
            }

            if (round > 0)
            {
                (forward, backward) = (Math.Min(forward, forwardMs), Math.Min(backward, watch.Elapsed.TotalMilliseconds));
            }
        }

        var flops = 3 * 2.0 * tokens * shapes.Sum(s => s.Item1 * s.Item2);
        return (forward, backward, flops / ((forward + backward) / 1e3) / 1e9);
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>Tokens/s of an inference forward pass (float32, no gradients) over a batch of random ids.</summary>
    private static double Forward(Gpt2Config config, int batch, int block)
    {
        using var model = new Gpt2Model(config, seed: 1);
        model.eval();
        using var noGrad = no_grad();
        using var ids = randint(0, config.VocabSize, [batch, block], dtype: ScalarType.Int64);
        for (var i = 0; i < 2; i++)
        {
            using var warm = model.forward(ids);
        }

        var watch = Stopwatch.StartNew();
        var runs = 0;
        while (watch.Elapsed.TotalSeconds < 2 || runs < 3)
        {
            using var logits = model.forward(ids);
            runs++;
        }

        return (double)runs * batch * block / watch.Elapsed.TotalSeconds;
    }

    private static double Generate(Gpt2Config config)
    {
        using var model = new Gpt2Model(config, seed: 1);
        var options = new GenerationOptions { MaxNewTokens = 64, Temperature = 0 };
        TextGenerator.Generate(model, [1, 2, 3, 4], options with { MaxNewTokens = 4 });
        var watch = Stopwatch.StartNew();
        var ids = TextGenerator.Generate(model, [1, 2, 3, 4], options);
        return ids.Count / watch.Elapsed.TotalSeconds;
    }

    private static int[] Read(this ArrayTokenSource source, int count)
    {
        var buffer = new int[count];
        source.Read(0, buffer);
        return buffer;
    }
}

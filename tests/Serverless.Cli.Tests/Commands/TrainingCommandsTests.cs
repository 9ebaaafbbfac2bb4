using System.Text.Json;

namespace Serverless.Cli.Tests.Commands;

public sealed class TrainingCommandsTests : IDisposable
{
    private readonly CliFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    private string Corpus(int documents) => _fixture.Write("corpus.txt",
        string.Join("\n\n", Enumerable.Range(0, documents).Select(i => $"In the beginning {i} there was text, and the text was {i % 7}.")));

    [Fact]
    public void Pretrain_WritesALoadableModelAndReportsIt()
    {
        var output = Path.Combine(_fixture.Root, "pre");
        var result = CliFixture.Run("pretrain", "--corpus", Corpus(60), "--out", output, "--steps", "6", "--json");
        result.ExitCode.ShouldBe(0, result.Error);
        var lines = result.Output.Trim().Split('\n');
        lines.Length.ShouldBe(7, "six progress lines and the result");
        using var last = JsonDocument.Parse(lines[^1]);
        last.RootElement.GetProperty("Steps").GetInt32().ShouldBe(6);
        File.Exists(Path.Combine(output, "model.safetensors")).ShouldBeTrue();
        File.Exists(Path.Combine(output, "pretraining.json")).ShouldBeTrue();
        Directory.Exists(output + ".work").ShouldBeFalse("the work folder is removed after success");

        var generated = CliFixture.Run("generate", "--model", output, "--prompt", "In the", "--max-new-tokens", "5", "--json");
        generated.ExitCode.ShouldBe(0, generated.Error);
    }

    [Fact]
    public void Finetune_PrintsTheEvaluationTable()
    {
        var output = Path.Combine(_fixture.Root, "ft");
        var spec = _fixture.Write("spec.json", """{"steps": 4, "batchSize": 2, "evalEvery": 2, "warmupSteps": 1, "sampleTokens": 4}""");
        var result = CliFixture.Run("finetune", "--base", _fixture.ModelDirectory, "--data", Corpus(30), "--out", output, "--spec", spec, "--strategy", "lora");
        result.ExitCode.ShouldBe(0, result.Error);
        result.Output.ShouldContain("base (zero-shot)");
        result.Output.ShouldContain("scratch (same budget)");
        result.Output.ShouldContain("candidate (lora)");
        File.Exists(Path.Combine(output, "candidate", "metrics.json")).ShouldBeTrue();
    }

    [Fact]
    public void Finetune_Curve_MeasuresTenAndThirtyPercent()
    {
        var output = Path.Combine(_fixture.Root, "curve");
        var spec = _fixture.Write("spec.json", """{"steps": 2, "batchSize": 2, "evalEvery": 2, "warmupSteps": 1, "sampleTokens": 0, "biasProbes": "none"}""");
        var result = CliFixture.Run("finetune", "--base", _fixture.ModelDirectory, "--data", Corpus(40), "--out", output, "--spec", spec, "--curve");
        result.ExitCode.ShouldBe(0, result.Error);
        result.Output.ShouldContain("Data efficiency (test perplexity, candidate / scratch): 10% of the training data");
        result.Output.ShouldContain("30% of the training data");
        File.Exists(Path.Combine(output, "candidate", "transfer.png")).ShouldBeTrue();
    }

    [Fact]
    public void Finetune_BadSpec_OneLineNamingTheField()
    {
        var spec = _fixture.Write("spec.json", """{"steps": 4, "lerningRate": 0.1}""");
        var result = CliFixture.Run("finetune", "--base", _fixture.ModelDirectory, "--data", Corpus(10), "--out", Path.Combine(_fixture.Root, "x"), "--spec", spec);
        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldStartWith("error: ");
        result.Error.Trim().ShouldEndWith("spec.json is invalid: lerningRate: unknown field (did you mean 'learningRate'?).");
        result.Error.Trim().Split('\n').Length.ShouldBe(1);
    }

    [Fact]
    public void Finetune_BadDataset_ListsTheErrorsWithLines()
    {
        var data = _fixture.Write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": 5}\nnot json\n");
        var result = CliFixture.Run("finetune", "--base", _fixture.ModelDirectory, "--data", data, "--out", Path.Combine(_fixture.Root, "y"), "--steps", "2");
        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldContain("bad.jsonl:2: field \"text\": must be a string, found a number.");
        result.Error.ShouldContain("bad.jsonl:3: malformed JSON");
    }

    [Fact]
    public void Demo_RunsTheWholeStoryOnTheShippedBaseAndCachesIt()
    {
        var home = Path.Combine(_fixture.Root, "home");
        var first = CliFixture.Run("demo", "--home", home, "--steps", "3");
        first.ExitCode.ShouldBe(0, first.Error);
        first.Output.ShouldContain("First run: installed the shipped demo base model");
        File.Exists(Path.Combine(home, "base-models", "demo-base", "pretraining.json")).ShouldBeTrue();
        first.Output.ShouldMatch(@"Dictionary words in 20 samples of 200 bytes \(temperature 0\.8, top-k 40\): \d+ %");
        first.Output.ShouldContain("candidate (full)");
        first.Output.ShouldContain("\"type\": \"ModelPublished\"");
        first.Output.ShouldContain("A sample from demo@1");
        first.Output.ShouldContain("Data efficiency (test perplexity, candidate / scratch): 10% of the training data");
        first.Output.ShouldContain("\"transfer.png\"", customMessage: "the curve's plot is published with the version");

        var second = CliFixture.Run("demo", "--home", home, "--steps", "3");
        second.ExitCode.ShouldBe(0, second.Error);
        second.Output.ShouldNotContain("First run");
        second.Output.ShouldContain("A sample from demo@2", customMessage: "each demo run is a new job and a new version");
    }

    [Fact]
    public void Demo_WithPretrainSteps_PreTrainsTheBaseHere()
    {
        var home = Path.Combine(_fixture.Root, "home-pretrained");
        var run = CliFixture.Run("demo", "--home", home, "--pretrain-steps", "4", "--steps", "2");
        run.ExitCode.ShouldBe(0, run.Error);
        run.Output.ShouldContain("First run: pre-training the demo base model on the King James Bible");
        run.Output.ShouldContain("(4 steps)");
        run.Output.ShouldContain("A sample from demo@1");
    }

    [Theory]
    [InlineData("image", "samples.png", "--class", "Q", "q.png")]
    [InlineData("audio", "samples/candidate-1.wav", "--class", "female", "voice.wav")]
    public void Demo_Media_DropsFilesInClassFolders_PublishesWithSamples_AndTheChampionGenerates(string modality, string sample, string classOption, string className, string file)
    {
        var home = Path.Combine(_fixture.Root, "home-" + modality);
        var demo = CliFixture.Run("demo", "--modality", modality, "--home", home, "--pretrain-steps", "3", "--steps", "2");
        demo.ExitCode.ShouldBe(0, demo.Error + demo.Output);
        demo.Output.ShouldContain("First run: pre-training the " + modality + " base");
        demo.Output.ShouldContain(modality == "image" ? "bits/dim" : "bits/sample");
        demo.Output.ShouldContain("\"type\": \"ModelPublished\"");
        demo.Output.ShouldContain($"\"{sample}\"", customMessage: "the samples are published with the version, hashed in the manifest");
        File.Exists(Path.Combine(home, "model-registry", $"demo-{modality}", "1", sample)).ShouldBeTrue();
        File.ReadAllText(Path.Combine(home, "model-registry", $"demo-{modality}", "1", "README.md")).ShouldContain(modality == "image" ? "![samples](samples.png)" : "samples/candidate-1.wav");

        var output = Path.Combine(_fixture.Root, file);
        var generated = CliFixture.Run("generate", "--model", $"demo-{modality}@champion", "--home", home, "--out", output, classOption, className, "--count", "2", "--seconds", "0.05");
        generated.ExitCode.ShouldBe(0, generated.Error);
        generated.Output.ShouldContain($"({className}) to {output}");
        new FileInfo(output).Length.ShouldBeGreaterThan(100);

        var unknown = CliFixture.Run("generate", "--model", $"demo-{modality}@champion", "--home", home, "--out", output, "--class", "nope");
        unknown.ExitCode.ShouldNotBe(0);
        unknown.Error.ShouldContain($"--class nope: the model knows ");
        unknown.Error.ShouldContain(className);

        var text = CliFixture.Run("generate", "--model", $"demo-{modality}@champion", "--home", home, "--prompt", "hello");
        text.ExitCode.ShouldNotBe(0);
        text.Error.ShouldContain("not text");
    }

    [Fact]
    public void Pretrain_AMixOfModalities_IsAnErrorNamingAFileOfEachKind()
    {
        var folder = Path.Combine(_fixture.Root, "mixed");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "a.txt"), "text\n");
        File.WriteAllBytes(Path.Combine(folder, "b.wav"), [1, 2, 3]);

        var result = CliFixture.Run("pretrain", "--corpus", folder, "--out", Path.Combine(_fixture.Root, "m"));

        result.ExitCode.ShouldNotBe(0);
        result.Error.ShouldContain("mix modalities");
        result.Error.ShouldContain("a.txt is text");
        result.Error.ShouldContain("b.wav is audio");
    }
}

using TorchSharp;
using Serverless.Model.Data;
using Serverless.Model.FineTuning;
using Serverless.Model.Gpt2;
using Serverless.Model.Safetensors;
using Serverless.Model.Training;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Training;

public class StrategyTests
{
    private static readonly ArrayTokenSource Data = TrainingFixtures.Tokens(TrainingFixtures.DemoText("fortunes.jsonl.gz", 30_000));

    private static Dictionary<string, Tensor> Snapshot(Gpt2Model model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    private static TrainingResult Train(Gpt2Model model, TrainingSpec spec, Gpt2Model? teacher = null) =>
        TrainingLoop.Train(model, StrategySetup.Apply(model, spec), spec, Data, Data, new TrainingOptions { Teacher = teacher });

    [Fact]
    public void Freeze_EmbeddingsAndLowerBlocksStayPut_UpperBlocksTrain()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var before = Snapshot(model);
        var spec = TrainingFixtures.QuickSpec with { Strategy = Strategies.Freeze, FreezeLayers = 1, Steps = 5 };
        var trainable = StrategySetup.Apply(model, spec).Select(p => p.Name).ToList();
        trainable.ShouldAllBe(n => n.StartsWith("h.1.") || n.StartsWith("ln_f."));

        Train(model, spec);
        foreach (var (name, parameter) in model.named_parameters())
        {
            var unchanged = parameter.equal(before[name]).all().item<bool>();
            var frozen = name.StartsWith("wte.") || name.StartsWith("wpe.") || name.StartsWith("h.0.");
            unchanged.ShouldBe(frozen, name);
        }
    }

    [Fact]
    public void Freeze_AllLayers_IsRefusedNamingTheField()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        Should.Throw<SpecException>(() => StrategySetup.Apply(model, new TrainingSpec { Strategy = Strategies.Freeze, FreezeLayers = 2 }))
            .Message.ShouldContain("freezeLayers: is 2");
    }

    [Fact]
    public void Lora_OnlyAdaptersTrain_AndMergedExportGivesTheSameLogits()
    {
        using var dir = new TempDirectory();
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var before = Snapshot(model);
        var spec = TrainingFixtures.QuickSpec with { Strategy = Strategies.Lora, LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.1, Steps = 10, LearningRate = 1e-2 };
        var trainable = StrategySetup.Apply(model, spec);
        trainable.Count.ShouldBe(2 * 4 * 2);
        trainable.ShouldAllBe(p => p.Name.Contains(".lora_"));
        TrainingLoop.Train(model, trainable, spec, Data, Data, new TrainingOptions());

        foreach (var (name, original) in before)
        {
            model.named_parameters().Single(p => p.name == name).parameter.equal(original).all().item<bool>().ShouldBeTrue(name);
        }

        model.Projections().First().Projection.LoraB!.abs().sum().item<float>().ShouldBeGreaterThan(0, "the adapters trained");
        model.SavePretrained(dir.Path);
        using var merged = Gpt2Model.FromPretrained(dir.Path);
        merged.HasAdapters.ShouldBeFalse();
        using var idx = tensor(new long[] { 72, 101, 108, 108, 111, 32, 119 }).unsqueeze(0);
        model.eval();
        using var expected = model.forward(idx);
        using var actual = merged.forward(idx);
        actual.allclose(expected, rtol: 1e-4, atol: 1e-5).ShouldBeTrue();
        using var baseLogits = new Gpt2Model(TrainingFixtures.Config, seed: 1).forward(idx);
        actual.allclose(baseLogits, atol: 1e-4).ShouldBeFalse("merging changed the weights");
    }

    [Fact]
    public void Lora_AdaptersAreCreatedOnTheModelsDevice()
    {
        // The meta device stands in for CUDA: a tensor created without the model's device would land on the CPU.
        // (libtorch cannot run a forward pass on meta tensors, so the attention mask's device is not checked here.)
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var meta = new TorchSharp.torch.Device(TorchSharp.DeviceType.META);
        model.to(meta);
        StrategySetup.Apply(model, new TrainingSpec { Strategy = Strategies.Lora, LoraRank = 4 });

        model.parameters().ShouldAllBe(p => p.device_type == TorchSharp.DeviceType.META);
        model.buffers().ShouldAllBe(b => b.device_type == TorchSharp.DeviceType.META);
    }

    [Fact]
    public void Lora_AdapterExport_IsSmallAndPeftShaped()
    {
        using var dir = new TempDirectory();
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        var spec = new TrainingSpec { Strategy = Strategies.Lora, LoraRank = 4 };
        StrategySetup.Apply(model, spec);
        FineTuneJob.SaveAdapter(dir.Path, model, spec, "tiny-base");

        // PeftModel.save_pretrained on GPT2LMHeadModel writes its state-dict keys without the adapter name:
        // base_model.model.transformer.h.{i}.{attn|mlp}.{module}.lora_{A|B}.weight, A as [r, in] and B as [out, r].
        var header = SafetensorsHeader.Read(Path.Combine(dir.Path, "adapter_model.safetensors"));
        header.Tensors.Count.ShouldBe(16);
        header.Tensors.Keys.ShouldAllBe(k => k.StartsWith("base_model.model.transformer.h.", StringComparison.Ordinal));
        header.Tensors["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].Shape.ShouldBe([4L, 64L]);
        header.Tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].Shape.ShouldBe([192L, 4L]);
        header.Tensors["base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight"].Shape.ShouldBe([256L, 4L]);
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "adapter_config.json")))!;
        config["peft_type"]!.GetValue<string>().ShouldBe("LORA");
        config["task_type"]!.GetValue<string>().ShouldBe("CAUSAL_LM");
        config["r"]!.GetValue<int>().ShouldBe(4);
        config["fan_in_fan_out"]!.GetValue<bool>().ShouldBeTrue("GPT-2's projections are Conv1D");
        config["target_modules"]!.AsArray().Select(m => m!.GetValue<string>()).ShouldBe(["c_attn", "c_proj", "c_fc"], ignoreOrder: true);
        config.AsObject().ContainsKey("base_model_name_or_path").ShouldBeTrue();
        config.AsObject().ContainsKey("lora_alpha").ShouldBeTrue();
    }

    [Fact]
    public void Distill_StudentTakesEvenlySpacedBlocks()
    {
        using var source = new Gpt2Model(TrainingFixtures.Config with { NLayer = 3 }, seed: 1);
        using var student = Distillation.Student(source, 2);
        student.Config.NLayer.ShouldBe(2);
        var s = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in student.named_parameters())
        {
            var from = name.StartsWith("h.1.") ? "h.2." + name[4..] : name;
            parameter.equal(s[from]).all().item<bool>().ShouldBeTrue(name);
        }
    }

    [Fact]
    public void Distill_StudentEqualToTeacher_LossIsTheCrossEntropyShare()
    {
        using var model = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        using var input = tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }).view(2, 4);
        using var target = tensor(new long[] { 2, 3, 4, 5, 6, 7, 8, 9 }).view(2, 4);
        var spec = new TrainingSpec { DistillAlpha = 0.25, DistillTemperature = 3 };
        using var loss = Distillation.Loss(model, model, input, target, spec);
        using var ce = model.Loss(input, target);
        loss.item<float>().ShouldBe(0.75f * ce.item<float>(), 1e-5f);
    }

    [Fact]
    public void Distill_Training_ReducesTheStudentsLoss()
    {
        using var teacher = new Gpt2Model(TrainingFixtures.Config, seed: 1);
        Train(teacher, TrainingFixtures.QuickSpec with { Steps = 30 });
        using var student = Distillation.Student(teacher, 1);
        var result = Train(student, TrainingFixtures.QuickSpec with { Strategy = Strategies.Distill, Steps = 20 }, teacher);
        result.TrainLoss[^1].Loss.ShouldBeLessThan(result.TrainLoss[0].Loss);
    }
}

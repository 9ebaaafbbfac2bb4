using System.Text;
using System.Text.Json;
using Serverless.Model.Gpt2;
using Serverless.Model.Safetensors;
using static TorchSharp.torch;

namespace Serverless.Model.Tests.Gpt2;

public class ModelDirectoryTests
{
    [Fact]
    public void SaveThenLoad_IsBitExact()
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create(seed: 3);
        model.SavePretrained(dir.Path);
        using var loaded = Gpt2Model.FromPretrained(dir.Path);

        loaded.Config.ShouldBe(model.Config);
        foreach (var ((name, expected), (_, actual)) in model.named_parameters().Zip(loaded.named_parameters()))
        {
            expected.equal(actual).all().item<bool>().ShouldBeTrue(name);
        }
    }

    [Fact]
    public void Save_WritesHuggingFaceSafetensorsLayout()
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create();
        model.SavePretrained(dir.Path);
        var bytes = File.ReadAllBytes(Path.Combine(dir.Path, "model.safetensors"));

        var headerLength = (long)BitConverter.ToUInt64(bytes, 0);
        (headerLength % 8).ShouldBe(0, "the header is padded to 8 bytes");
        var json = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        json[0].ShouldBe('{');
        using var header = JsonDocument.Parse(json.TrimEnd(' '));
        header.RootElement.GetProperty("__metadata__").GetProperty("format").GetString().ShouldBe("pt");

        var entries = header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").ToList();
        var names = entries.Select(e => e.Name).ToHashSet();
        names.ShouldBe(model.named_parameters().Select(p => p.name).ToHashSet(), ignoreOrder: true);
        names.ShouldNotContain("lm_head.weight");

        long expectedOffset = 0;
        foreach (var entry in entries.OrderBy(e => e.Value.GetProperty("data_offsets")[0].GetInt64()))
        {
            entry.Value.GetProperty("dtype").GetString().ShouldBe("F32");
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            offsets[0].ShouldBe(expectedOffset, "tensors are packed without holes");
            var count = entry.Value.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
            (offsets[1] - offsets[0]).ShouldBe(count * 4);
            expectedOffset = offsets[1];
        }

        (8 + headerLength + expectedOffset).ShouldBe(bytes.Length);
        var cAttn = header.RootElement.GetProperty("h.0.attn.c_attn.weight").GetProperty("shape").EnumerateArray().Select(d => d.GetInt64());
        cAttn.ShouldBe([32L, 96L], "Conv1D layout is [in, out]");
        var cFc = header.RootElement.GetProperty("h.0.mlp.c_fc.weight").GetProperty("shape").EnumerateArray().Select(d => d.GetInt64());
        cFc.ShouldBe([32L, 128L]);
    }

    [Theory]
    [InlineData(ScalarType.Float32, true, true)]
    [InlineData(ScalarType.Float16, false, false)]
    [InlineData(ScalarType.BFloat16, true, false)]
    public void Load_HubVariants_PrefixBuffersHeadAndDtypes(ScalarType dtype, bool prefix, bool withHeadAndBuffers)
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create(seed: 5);
        TinyModels.Config.Save(dir.File("config.json"));
        var tensors = HubStyleTensors(model, dtype, prefix ? "transformer." : "");
        if (withHeadAndBuffers)
        {
            tensors.Add(("lm_head.weight", model.TokenEmbedding.weight!.detach().clone()));
            for (var i = 0; i < 2; i++)
            {
                tensors.Add(($"{(prefix ? "transformer." : "")}h.{i}.attn.bias", ones(1, 1, 32, 32).tril().view(1, 1, 32, 32)));
                tensors.Add(($"{(prefix ? "transformer." : "")}h.{i}.attn.masked_bias", tensor(-1e4f)));
            }
        }

        SafetensorsFile.Save(dir.File("model.safetensors"), tensors);
        using var loaded = Gpt2Model.FromPretrained(dir.Path);

        using var idx = tensor(new long[] { 1, 2, 3, 4 }).unsqueeze(0);
        using var expected = model.forward(idx);
        using var actual = loaded.forward(idx);
        var tolerance = dtype == ScalarType.Float32 ? 1e-6 : 0.1;
        actual.allclose(expected, atol: tolerance, rtol: tolerance).ShouldBeTrue();
        loaded.parameters().All(p => p.dtype == ScalarType.Float32).ShouldBeTrue();
    }

    [Fact]
    public void Load_AnUntiedHead_IsRefused_NotSilentlyReplacedByTheEmbeddings()
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create(seed: 5);
        TinyModels.Config.Save(dir.File("config.json"));
        var tensors = HubStyleTensors(model, ScalarType.Float32, "transformer.");
        tensors.Add(("lm_head.weight", model.TokenEmbedding.weight!.detach().clone().add_(0.01)));
        SafetensorsFile.Save(dir.File("model.safetensors"), tensors);

        var error = Should.Throw<ModelFormatException>(() => Gpt2Model.FromPretrained(dir.Path));
        error.Message.ShouldContain("lm_head.weight differs from wte.weight");
        error.Message.ShouldContain("untied");
    }

    [Fact]
    public void Load_HubConfigWhoseEndOfTextIdIsOutsideTheVocabulary_IsAccepted_AsTransformersAcceptsIt()
    {
        using var dir = new TempDirectory();
        var config = dir.Write("config.json", """{"vocab_size": 300, "n_positions": 32, "n_embd": 32, "n_layer": 1, "n_head": 4, "bos_token_id": 50256, "eos_token_id": 50256, "serverless_tokenizer": "bytes"}""");
        var loaded = Gpt2Config.Load(config);
        loaded.EosTokenId.ShouldBe(50256);
        using var model = new Gpt2Model(loaded, seed: 1);
        var generated = Serverless.Model.Generation.TextGenerator.Generate(model, [65], new Serverless.Model.Generation.GenerationOptions { MaxNewTokens = 5, Temperature = 0 });
        generated.Count.ShouldBe(5, "an end-of-text id the model can never produce never stops generation early");
    }

    [Fact]
    public void Load_MissingTensor_NamesItAndItsShape()
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create();
        TinyModels.Config.Save(dir.File("config.json"));
        var tensors = HubStyleTensors(model, ScalarType.Float32, "").Where(t => t.Name != "h.1.mlp.c_fc.weight").ToList();
        SafetensorsFile.Save(dir.File("model.safetensors"), tensors);

        var error = Should.Throw<ModelFormatException>(() => Gpt2Model.FromPretrained(dir.Path));
        error.Message.ShouldContain("tensor 'h.1.mlp.c_fc.weight' is missing (expected shape [32, 128])");
    }

    [Fact]
    public void Load_MisShapedTensor_NamesItAndBothShapes()
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create();
        TinyModels.Config.Save(dir.File("config.json"));
        var tensors = HubStyleTensors(model, ScalarType.Float32, "")
            .Select(t => t.Name == "wpe.weight" ? (t.Name, zeros(16, 32)) : t).ToList();
        SafetensorsFile.Save(dir.File("model.safetensors"), tensors);

        var error = Should.Throw<ModelFormatException>(() => Gpt2Model.FromPretrained(dir.Path));
        error.Message.ShouldContain("tensor 'wpe.weight' has shape [16, 32], expected [32, 32]");
    }

    [Fact]
    public void Load_ConfigWithFewerLayersThanTensors_ReportsTheExtraTensors()
    {
        using var dir = new TempDirectory();
        using var model = TinyModels.Create();
        model.SavePretrained(dir.Path);
        (TinyModels.Config with { NLayer = 1 }).Save(dir.File("config.json"));

        var error = Should.Throw<ModelFormatException>(() => Gpt2Model.FromPretrained(dir.Path));
        error.Message.ShouldContain("tensor 'h.1.attn.c_attn.weight' [32, 96] is not part of a GPT-2 model with this config.json (n_layer 1)");
    }

    [Fact]
    public void Load_OnlyPickleWeights_RefusesAndExplains()
    {
        using var dir = new TempDirectory();
        TinyModels.Config.Save(dir.File("config.json"));
        dir.Write("pytorch_model.bin", [0x80, 0x02, 0x7d, 0x71]);
        var error = Should.Throw<ModelFormatException>(() => Gpt2Model.FromPretrained(dir.Path));
        error.Message.ShouldContain("has pytorch_model.bin but no model.safetensors");
    }

    [Fact]
    public void Load_MissingDirectory_SaysSo()
    {
        Should.Throw<ModelFormatException>(() => Gpt2Model.FromPretrained("/nonexistent/model"))
            .Message.ShouldContain("does not exist");
    }

    /// <summary>The tensors as a Hugging Face checkpoint stores them: Conv1D weights transposed, in the given dtype.</summary>
    private static List<(string Name, Tensor Tensor)> HubStyleTensors(Gpt2Model model, ScalarType dtype, string prefix) =>
        model.named_parameters()
            .Select(p => (prefix + p.name, (ModelDirectory.IsConv1DWeight(p.name) ? p.parameter.detach().t() : p.parameter.detach()).to(dtype)))
            .ToList();
}

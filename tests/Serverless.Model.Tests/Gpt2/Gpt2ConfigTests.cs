using Serverless.Model.Gpt2;

namespace Serverless.Model.Tests.Gpt2;

public class Gpt2ConfigTests
{
    // config.json exactly as the Hugging Face hub ships it for "gpt2".
    private const string HubGpt2Config = """
        {
          "activation_function": "gelu_new",
          "architectures": [
            "GPT2LMHeadModel"
          ],
          "attn_pdrop": 0.1,
          "bos_token_id": 50256,
          "embd_pdrop": 0.1,
          "eos_token_id": 50256,
          "initializer_range": 0.02,
          "layer_norm_epsilon": 1e-05,
          "model_type": "gpt2",
          "n_ctx": 1024,
          "n_embd": 768,
          "n_head": 12,
          "n_layer": 12,
          "n_positions": 1024,
          "resid_pdrop": 0.1,
          "summary_activation": null,
          "summary_first_dropout": 0.1,
          "summary_proj_to_labels": true,
          "summary_type": "cls_index",
          "summary_use_proj": true,
          "task_specific_params": {
            "text-generation": {
              "do_sample": true,
              "max_length": 50
            }
          },
          "vocab_size": 50257
        }
        """;

    [Fact]
    public void Load_HubConfig_ReadsFieldsAndInfersGpt2Tokenizer()
    {
        using var dir = new TempDirectory();
        var config = Gpt2Config.Load(dir.Write("config.json", HubGpt2Config));

        config.ShouldBe(Gpt2Config.Gpt2Small with { Tokenizer = null });
        config.TokenizerName.ShouldBe("gpt2");
        config.InnerSize.ShouldBe(3072);
    }

    [Fact]
    public void SaveThenLoad_RoundTripsAndKeepsHuggingFaceFields()
    {
        using var dir = new TempDirectory();
        var path = dir.File("config.json");
        TinyModels.Config.Save(path);

        Gpt2Config.Load(path).ShouldBe(TinyModels.Config);
        var text = File.ReadAllText(path);
        text.ShouldContain("\"model_type\": \"gpt2\"");
        text.ShouldContain("\"GPT2LMHeadModel\"");
        text.ShouldContain("\"serverless_tokenizer\": \"bytes\"");
    }

    [Theory]
    [InlineData("""{"n_embd": 30, "n_head": 4}""", "n_embd (30) must be a multiple of n_head (4)")]
    [InlineData("""{"n_layer": -1}""", "n_layer is -1")]
    [InlineData("""{"activation_function": "swish"}""", "activation_function 'swish' is not supported")]
    [InlineData("""{"vocab_size": 1000, "eos_token_id": 0}""", "vocab_size 1000 matches none we know")]
    [InlineData("""{"serverless_tokenizer": "sentencepiece"}""", "serverless_tokenizer 'sentencepiece' is unknown")]
    [InlineData("""{"n_layer": """, "is not valid JSON")]
    public void Load_BadConfig_FailsNamingTheField(string json, string expected)
    {
        using var dir = new TempDirectory();
        var error = Should.Throw<ModelFormatException>(() => Gpt2Config.Load(dir.Write("config.json", json)));
        error.Message.ShouldContain(expected);
    }
}

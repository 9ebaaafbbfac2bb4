using Serverless.Model.Tokenizers;

namespace Serverless.Model.Tests.Tokenizers;

public class Gpt2BpeTokenizerTests
{
    [Fact]
    public void Encode_HelloWorld_MatchesGpt2Ids() =>
        new Gpt2BpeTokenizer().Encode("Hello world").ShouldBe([15496, 995]);

    [Fact]
    public void EndOfText_Is50256()
    {
        var tokenizer = new Gpt2BpeTokenizer();
        tokenizer.EndOfText.ShouldBe(50256);
        tokenizer.Decode([50256]).ShouldBe("<|endoftext|>");
    }

    [Fact]
    public void EncodeDecode_RoundTripsUnicode()
    {
        var tokenizer = new Gpt2BpeTokenizer();
        const string text = "Naïve café — 日本語 🚀\n  spaces";
        tokenizer.Decode(tokenizer.Encode(text)).ShouldBe(text);
    }
}

public class ByteTokenizerTests
{
    [Fact]
    public void Encode_GivesUtf8Bytes() => new ByteTokenizer().Encode("hé").ShouldBe([104, 195, 169]);

    [Fact]
    public void Decode_EndOfTextAndInvalidBytes_DoNotThrow()
    {
        var tokenizer = new ByteTokenizer();
        tokenizer.VocabSize.ShouldBe(257);
        tokenizer.Decode([104, 105, 256, 0xFF]).ShouldBe("hi<|endoftext|>\uFFFD");
    }

    [Fact]
    public void Registry_FindsBothAndRejectsUnknown()
    {
        TokenizerRegistry.Get("gpt2").ShouldBeOfType<Gpt2BpeTokenizer>();
        TokenizerRegistry.Get("bytes").ShouldBeOfType<ByteTokenizer>();
        Should.Throw<ModelFormatException>(() => TokenizerRegistry.Get("wordpiece")).Message.ShouldContain("Unknown tokenizer 'wordpiece'");
    }
}

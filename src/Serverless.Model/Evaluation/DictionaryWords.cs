using Serverless.Model.Generation;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Evaluation;

/// <summary>The share of generated words found in a dictionary, and the words it counted.</summary>
/// <param name="Words">Letters-only tokens of two letters or more.</param>
/// <param name="Found">How many of them the dictionary holds.</param>
public sealed record WordShare(int Words, int Found)
{
    /// <summary>Found / words; 0 when there are no words.</summary>
    public double Share => Words == 0 ? 0 : (double)Found / Words;
}

/// <summary>
/// Whether generated text reads as words: split on whitespace, strip punctuation from each token's ends, keep the
/// tokens made only of letters that are at least two long, and look each up in a word list, by default Debian's
/// <c>wamerican</c> (<c>/usr/share/dict/words</c>): a word counts when the list has it as written or in lower case
/// ("The" and "THE" count as "the"), but not when the list has it only capitalized ("th" is not "Th", an
/// abbreviation). A measure of surface form, not of sense.
/// </summary>
public sealed class DictionaryWords
{
    /// <summary>Where Debian's <c>wamerican</c> puts its word list.</summary>
    public const string DefaultPath = "/usr/share/dict/words";

    private readonly HashSet<string> _words;

    /// <summary>A dictionary of <paramref name="words"/>, as written.</summary>
    public DictionaryWords(IEnumerable<string> words)
    {
        ArgumentNullException.ThrowIfNull(words);
        _words = new HashSet<string>(words.Select(w => w.Trim()).Where(w => w.Length > 0), StringComparer.Ordinal);
    }

    /// <summary>Whether the list has <paramref name="word"/> as written or in lower case.</summary>
    public bool Contains(string word) => _words.Contains(word) || _words.Contains(word.ToLowerInvariant());

    /// <summary>The word list at <paramref name="path"/>, or null when it is not there (install <c>wamerican</c>).</summary>
    public static DictionaryWords? Load(string path = DefaultPath) => File.Exists(path) ? new DictionaryWords(File.ReadLines(path)) : null;

    /// <summary>Counts the words of <paramref name="texts"/> and how many the dictionary holds.</summary>
    public WordShare Measure(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var (words, found) = (0, 0);
        foreach (var word in texts.SelectMany(Words))
        {
            words++;
            found += Contains(word) ? 1 : 0;
        }

        return new WordShare(words, found);
    }

    /// <summary>
    /// Samples <paramref name="samples"/> texts of <paramref name="length"/> tokens each from <paramref name="model"/>
    /// (from the start of a document: end-of-text is the prompt, and a document that ends early is followed by a new
    /// one, written after a newline, so every sample is full length), sampled with <paramref name="options"/> (the seed
    /// of sample s's d-th document is 1000·s + d), and measures
    /// their words. Returns the share and the texts.
    /// </summary>
    public (WordShare Share, IReadOnlyList<string> Texts) MeasureSamples(Gpt2Model model, ITextTokenizer tokenizer, GenerationOptions options, int samples = 20, int length = 200)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        var texts = new List<string>();
        for (var sample = 1; sample <= samples; sample++)
        {
            var ids = new List<int>();
            for (var document = 0; ids.Count < length; document++)
            {
                var generated = TextGenerator.Generate(model, [tokenizer.EndOfText],
                    options with { MaxNewTokens = length - ids.Count, Seed = sample * 1000 + document });
                ids.AddRange(generated);
            }

            texts.Add(tokenizer.Decode(ids.Select(id => id == tokenizer.EndOfText ? tokenizer.Encode("\n")[0] : id)));
        }

        return (Measure(texts), texts);
    }

    /// <summary>The letters-only tokens of two letters or more in <paramref name="text"/>, punctuation stripped from their ends.</summary>
    public static IEnumerable<string> Words(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var raw in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var token = raw.Trim(Punctuation);
            if (token.Length >= 2 && token.All(char.IsLetter))
            {
                yield return token;
            }
        }
    }

    private static readonly char[] Punctuation = ".,;:!?\"'()[]{}-_*`«»“”‘’…/".ToCharArray();
}

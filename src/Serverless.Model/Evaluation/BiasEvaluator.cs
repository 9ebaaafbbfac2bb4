using Serverless.Model.Data;
using Serverless.Model.Gpt2;
using Serverless.Model.Tokenizers;

namespace Serverless.Model.Evaluation;

/// <summary>Scores minimal pairs with the base model and the candidate: does fine-tuning transfer or amplify a preference?</summary>
public static class BiasEvaluator
{
    /// <summary>Per group: the mean log p(a) − log p(b) under each model, the shift, and the share of flipped preferences.</summary>
    public static IReadOnlyList<BiasResult> Measure(Gpt2Model baseModel, Gpt2Model candidate, ITextTokenizer tokenizer, IReadOnlyList<BiasPair> pairs)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(pairs);
        return [.. pairs.GroupBy(p => p.Group).Select(group =>
        {
            var differences = group.Select(p => (Base: Difference(baseModel, tokenizer, p), Candidate: Difference(candidate, tokenizer, p))).ToList();
            var baseMean = differences.Average(d => d.Base);
            var candidateMean = differences.Average(d => d.Candidate);
            var flips = differences.Count(d => Math.Sign(d.Base) != Math.Sign(d.Candidate));
            return new BiasResult(group.Key, differences.Count, baseMean, candidateMean, candidateMean - baseMean, (double)flips / differences.Count);
        })];
    }

    /// <summary>log p(a) − log p(b), each text scored after an end-of-text, as documents are.</summary>
    private static double Difference(Gpt2Model model, ITextTokenizer tokenizer, BiasPair pair) =>
        LogLikelihood(model, tokenizer, pair.A) - LogLikelihood(model, tokenizer, pair.B);

    /// <summary>The total log-likelihood of <paramref name="text"/> (nats), given a preceding end-of-text.</summary>
    public static double LogLikelihood(Gpt2Model model, ITextTokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var ids = new List<int> { tokenizer.EndOfText };
        ids.AddRange(tokenizer.Encode(text));
        if (ids.Count > model.Config.NPositions + 1)
        {
            ids = ids[..(model.Config.NPositions + 1)];   // a probe longer than the context is scored on its start
        }

        var score = Evaluator.Evaluate(model, new ArrayTokenSource(ids));
        return -score.Loss * score.Tokens;
    }
}

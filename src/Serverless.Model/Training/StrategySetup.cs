using Serverless.Model.Gpt2;
using TorchSharp.Modules;

namespace Serverless.Model.Training;

/// <summary>Prepares a model for a strategy: which parameters train, and adapters where the strategy adds them.</summary>
public static class StrategySetup
{
    /// <summary>
    /// Applies <paramref name="spec"/>'s strategy to <paramref name="model"/> and returns the parameters to train
    /// (frozen ones have gradients off and are left out of the optimizer).
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> Apply(Gpt2Model model, TrainingSpec spec)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(spec);
        switch (spec.Strategy)
        {
            case Strategies.Freeze:
                if (spec.FreezeLayers >= model.Config.NLayer)
                {
                    throw new SpecException("spec", [$"freezeLayers: is {spec.FreezeLayers}; it must be less than the model's n_layer ({model.Config.NLayer}), or nothing would train but the final LayerNorm."]);
                }

                foreach (var (name, parameter) in model.named_parameters())
                {
                    parameter.requires_grad = !IsFrozen(name, spec.FreezeLayers);
                }

                break;
            case Strategies.Lora:
                foreach (var parameter in model.parameters())
                {
                    parameter.requires_grad = false;
                }

                model.AddAdapters(spec.LoraRank, spec.LoraAlpha, spec.LoraDropout, spec.Seed);
                break;
            default:
                foreach (var parameter in model.parameters())
                {
                    parameter.requires_grad = true;
                }

                break;
        }

        return model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
    }

    private static bool IsFrozen(string name, int freezeLayers)
    {
        if (name.StartsWith("wte.", StringComparison.Ordinal) || name.StartsWith("wpe.", StringComparison.Ordinal))
        {
            return true;
        }

        if (!name.StartsWith("h.", StringComparison.Ordinal))
        {
            return false;
        }

        var layer = int.Parse(name.AsSpan(2, name.IndexOf('.', 2) - 2));
        return layer < freezeLayers;
    }
}

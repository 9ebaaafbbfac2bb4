using Serverless.Model.Training;

namespace Serverless.Cli.Commands;

/// <summary>Combines a spec file with command-line overrides.</summary>
internal static class SpecOptions
{
    public static TrainingSpec Load(FileInfo? file, int? steps, TrainingSpec? defaults = null, string? strategy = null)
    {
        var spec = file is null ? defaults ?? new TrainingSpec() : TrainingSpec.Load(file.FullName);
        if (steps is { } s)
        {
            spec = spec.WithSteps(s);
        }

        if (strategy is not null)
        {
            spec = spec with { Strategy = strategy };
        }

        return spec.Validate(file?.Name ?? "command line");
    }
}

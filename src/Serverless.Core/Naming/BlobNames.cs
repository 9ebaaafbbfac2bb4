using System.Text.RegularExpressions;

namespace Serverless.Core.Naming;

/// <summary>
/// The one place user-provided names are checked. A container is 3–63 lowercase letters, digits or dashes; a blob
/// name is 1–1024 characters of '/'-separated segments, none empty, '.' or '..', with no backslash, control
/// character or leading '/'. A model name is 1–64 of <c>[a-z0-9]</c> plus <c>-</c>, <c>_</c>, <c>.</c> (not first).
/// Nothing that passes can become a path outside its container.
/// </summary>
public static partial class BlobNames
{
    /// <summary>The longest blob name accepted.</summary>
    public const int MaxLength = 1024;

    /// <summary>Throws <see cref="ArgumentException"/> naming the problem, unless <paramref name="container"/> is valid.</summary>
    public static string Container(string container)
    {
        if (container is null || !ContainerPattern().IsMatch(container))
        {
            throw new ArgumentException($"'{container}' is not a valid container name (3–63 lowercase letters, digits and dashes).", nameof(container));
        }

        return container;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the problem, unless <paramref name="name"/> is a valid blob name.</summary>
    public static string Blob(string name)
    {
        var problem = Problem(name);
        return problem is null ? name : throw new ArgumentException($"Blob name '{Printable(name)}' is not allowed: {problem}.", nameof(name));
    }

    /// <summary>Why <paramref name="name"/> is not a valid blob name, or null when it is.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "it is empty";
        }

        if (name.Length > MaxLength)
        {
            return $"it is longer than {MaxLength} characters";
        }

        if (name.Any(char.IsControl))
        {
            return "it contains a control character";
        }

        if (name.Contains('\\', StringComparison.Ordinal))
        {
            return "it contains a backslash";
        }

        if (name.StartsWith('/'))
        {
            return "it starts with '/'";
        }

        if (name.Split('/').Any(segment => segment is "" or "." or ".."))
        {
            return "it has an empty, '.' or '..' segment";
        }

        return null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="model"/> is a valid model name.</summary>
    public static string Model(string model)
    {
        if (model is null || !ModelPattern().IsMatch(model))
        {
            throw new ArgumentException($"'{Printable(model ?? "")}' is not a valid model name (1–64 of a–z, 0–9, '-', '_', '.', starting with a letter or digit).", nameof(model));
        }

        return model;
    }

    /// <summary>Whether <paramref name="model"/> is a valid model name.</summary>
    public static bool IsModel(string? model) => model is not null && ModelPattern().IsMatch(model);

    private static string Printable(string s) => new(s.Take(80).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [GeneratedRegex(@"^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]\z")]
    private static partial Regex ContainerPattern();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9._-]{0,63}\z")]
    private static partial Regex ModelPattern();
}

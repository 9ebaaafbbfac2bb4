namespace Serverless.Model.Data;

/// <summary>One problem in a dataset file, precise enough to fix without guessing.</summary>
/// <param name="File">The file's name as the user gave it.</param>
/// <param name="Line">1-based line number, or null for a problem with the whole file.</param>
/// <param name="Field">The JSON field concerned, if any.</param>
/// <param name="Message">What is wrong and what was expected.</param>
public sealed record DatasetError(string File, long? Line, string? Field, string Message)
{
    /// <summary><c>file:line: field "x": message</c>.</summary>
    public override string ToString() =>
        File + (Line is { } l ? $":{l}" : "") + ": " + (Field is null ? "" : $"field \"{Field}\": ") + Message;
}

/// <summary>Collects dataset errors up to a cap, counting the rest, so one pass shows a user everything to fix.</summary>
public sealed class DatasetErrors
{
    private readonly List<DatasetError> _errors = [];

    /// <summary>Keeps at most <paramref name="cap"/> errors. <value>100</value>.</summary>
    public DatasetErrors(int cap = 100)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cap, 1);
        Cap = cap;
    }

    /// <summary>The most errors kept.</summary>
    public int Cap { get; }

    /// <summary>The errors kept, in the order found.</summary>
    public IReadOnlyList<DatasetError> Items => _errors;

    /// <summary>All errors found, including those past the cap.</summary>
    public int Total { get; private set; }

    /// <summary>Whether any error was found.</summary>
    public bool Any => Total > 0;

    /// <summary>Records an error.</summary>
    public void Add(DatasetError error)
    {
        Total++;
        if (_errors.Count < Cap)
        {
            _errors.Add(error);
        }
    }

    /// <summary>All kept errors, one per line, with a last line counting any not kept.</summary>
    public override string ToString() =>
        string.Join(Environment.NewLine, _errors) + (Total > _errors.Count ? $"{Environment.NewLine}… and {Total - _errors.Count} more errors" : "");
}

/// <summary>A dataset that cannot be used; <see cref="Errors"/> lists every problem found.</summary>
public sealed class DatasetValidationException(DatasetErrors errors)
    : Exception($"The dataset has {errors?.Total} error(s):{Environment.NewLine}{errors}")
{
    /// <summary>The problems found.</summary>
    public DatasetErrors Errors { get; } = errors ?? throw new ArgumentNullException(nameof(errors));
}

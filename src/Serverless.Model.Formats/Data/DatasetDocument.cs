namespace Serverless.Model.Data;

/// <summary>One training document and where it came from.</summary>
/// <param name="Text">The text, with chat and prompt/completion records already rendered.</param>
/// <param name="File">The source file's name.</param>
/// <param name="Line">The 1-based line it starts on.</param>
public sealed record DatasetDocument(string Text, string File, long Line);

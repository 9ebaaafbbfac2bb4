namespace Serverless.Model;

/// <summary>
/// A model directory, config or weights file that cannot be used, with a message that names the file,
/// field or tensor and what was expected. Never thrown for a bug of ours.
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception with a message a user can act on.</summary>
    public ModelFormatException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the error underneath it.</summary>
    public ModelFormatException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>Creates the exception with no message (serialization and tooling only).</summary>
    public ModelFormatException()
    {
    }
}

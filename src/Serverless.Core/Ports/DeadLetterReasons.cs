namespace Serverless.Core.Ports;

/// <summary>Why a host dead-letters a message, as <c>tune deadletters</c> shows it.</summary>
public static class DeadLetterReasons
{
    /// <summary>The body is not a CloudEvent this pipeline can handle; dead-lettered at once.</summary>
    public const string InvalidEvent = "InvalidEvent";

    /// <summary>The handler threw on every delivery, the last one included.</summary>
    public const string HandlerFailed = "HandlerFailed";

    /// <summary>The description for a handler's last failure: the exception's type and message, and the deliveries.</summary>
    public static string DescribeFailure(Exception exception, int deliveryCount)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var description = $"{exception.GetType().Name}: {exception.Message} (failed on each of {deliveryCount} deliveries)";
        return description.Length <= 1024 ? description : description[..1021] + "...";
    }
}

using Microsoft.Extensions.Logging;

namespace Serverless.Pipeline;

/// <summary>Every log line of the stages, as source-generated message templates.</summary>
internal static partial class PipelineLog
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "Ignoring {Blob}: {Reason}")]
    public static partial void IgnoringBlob(this ILogger logger, string blob, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Dataset {Blob} queued a fine-tune request for {Model} (new: {Sent})")]
    public static partial void DatasetQueued(this ILogger logger, string blob, string model, bool sent);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} for {Model} already exists; request {Trigger} completed without work")]
    public static partial void JobExists(this ILogger logger, string jobId, string model, string trigger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} for {Model} rejected: {Reason}")]
    public static partial void JobRejectedInput(this ILogger logger, string jobId, string model, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} for {Model} prepared: {TrainTokens} training, {ValidationTokens} validation and {TestTokens} test tokens")]
    public static partial void JobPrepared(this ILogger logger, string jobId, string model, long trainTokens, long validationTokens, long testTokens);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} dispatched as {Execution} (attempt {Attempt})")]
    public static partial void JobDispatched(this ILogger logger, string jobId, string execution, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} waits: {Running} trainers running, at most {Max}")]
    public static partial void JobWaits(this ILogger logger, string jobId, int running, int max);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} waits for the environment: {Reason}")]
    public static partial void JobWaitsForEnvironment(this ILogger logger, string jobId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} retried on request (was {State})")]
    public static partial void JobRetried(this ILogger logger, string jobId, string state);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention: removed {Blobs} blobs of {Jobs} jobs finished before {Before}")]
    public static partial void RetentionSwept(this ILogger logger, int blobs, int jobs, DateTimeOffset before);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention sweep failed; the next one tries again")]
    public static partial void RetentionFailed(this ILogger logger, Exception error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: {Model} version {Version} published")]
    public static partial void Published(this ILogger logger, string jobId, string model, int version);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: {Model} candidate rejected: {Reasons}")]
    public static partial void Rejected(this ILogger logger, string jobId, string model, string reasons);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} failed (attempt {Attempt}, retryable {Retryable}): {Error}")]
    public static partial void TrainingFailed(this ILogger logger, string jobId, int attempt, bool retryable, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Schedule: {Model} is due at {Occurrence} (queued: {Queued})")]
    public static partial void ScheduleDue(this ILogger logger, string model, DateTimeOffset occurrence, bool queued);

    [LoggerMessage(Level = LogLevel.Error, Message = "Handling {MessageId} from {Entity} failed (delivery {Delivery})")]
    public static partial void HandlerFailed(this ILogger logger, Exception exception, string messageId, string entity, int delivery);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Trainer watch: reported {JobId} as lost: {Reason}")]
    public static partial void TrainerLost(this ILogger logger, string jobId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Trainer watch: this round failed; the next one tries again")]
    public static partial void TrainerWatchFailed(this ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Receiving from {Entity} failed; trying again")]
    public static partial void PumpFailed(this ILogger logger, Exception exception, string entity);

    [LoggerMessage(Level = LogLevel.Error, Message = "Schedule: this round failed; the next one tries again")]
    public static partial void ScheduleFailed(this ILogger logger, Exception exception);
}

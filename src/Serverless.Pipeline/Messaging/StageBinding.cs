using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;

namespace Serverless.Pipeline.Messaging;

/// <summary>A bus-triggered stage registered in a host: its row of <see cref="StageEntities"/> and its handler.</summary>
/// <param name="Entity">Where it reads.</param>
/// <param name="Handler">What it does with each event.</param>
public sealed record StageBinding(StageEntity Entity, Func<CloudEvent, CancellationToken, Task> Handler)
{
    /// <summary>The settle-and-trace path for this stage, as every host runs it.</summary>
    public StageMessage Message(ILoggerFactory logging, PipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(logging);
        ArgumentNullException.ThrowIfNull(options);
        return new StageMessage(Entity.Entity, Handler, logging.CreateLogger(Entity.Stage), Entity.Tracing, options.Entities.MaxDeliveryCount);
    }
}

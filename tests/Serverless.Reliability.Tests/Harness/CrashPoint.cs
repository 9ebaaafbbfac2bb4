using System.Runtime.CompilerServices;
using Serverless.Core.Ports;

namespace Serverless.Reliability.Tests.Harness;

/// <summary>The host "died" here: thrown by the call that hit the crash point and by every call after it.</summary>
internal sealed class SimulatedCrashException(string point) : Exception($"simulated crash at {point}");

/// <summary>
/// Kills a host at a named point, as far as storage and the broker can tell: the call that reaches the point does not
/// happen, and neither does any later call of that host (no complete, no abandon, no further write) — what a SIGKILL
/// at that instant leaves behind. The host's trainers, separate processes, are not affected.
/// </summary>
/// <remarks>With <c>after</c>, the matching write happens and the host dies just after it.</remarks>
internal sealed class CrashPoint(string name, Func<string, string, byte[]?, bool>? onWrite = null, Func<string, OutgoingMessage, bool>? onPublish = null, bool after = false)
{
    private readonly bool _after = after;
    private readonly Func<string, string, byte[]?, bool>? _onWrite = onWrite;
    private readonly Func<string, OutgoingMessage, bool>? _onPublish = onPublish;
    private volatile bool _dead;

    public string Name { get; } = name;

    public bool Fired => _dead;

    /// <summary>Kills the host now, wherever it is.</summary>
    public void KillNow() => _dead = true;

    public (IBlobStore Blobs, IMessageBus Bus) Wrap((IBlobStore Blobs, IMessageBus Bus) ports) => (new Blobs(this, ports.Blobs), new Bus(this, ports.Bus));

    private void Check()
    {
        if (_dead)
        {
            throw new SimulatedCrashException(Name);
        }
    }

    private void Fire()
    {
        _dead = true;
        throw new SimulatedCrashException(Name);
    }

    private sealed class Blobs(CrashPoint point, IBlobStore inner) : IBlobStore
    {
        public Task<BlobItem?> GetAsync(string container, string name, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.GetAsync(container, name, cancellationToken);
        }

        public Task<(Stream Content, BlobItem Item)?> OpenReadAsync(string container, string name, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.OpenReadAsync(container, name, cancellationToken);
        }

        public async Task<BlobItem> WriteAsync(string container, string name, Stream content, BlobCondition condition = default, CancellationToken cancellationToken = default)
        {
            point.Check();
            if (point._onWrite is { } matches)
            {
                byte[]? bytes = null;
                if (content is MemoryStream memory)
                {
                    bytes = memory.ToArray();
                }

                if (matches(container, name, bytes))
                {
                    if (point._after)
                    {
                        await inner.WriteAsync(container, name, content, condition, cancellationToken);
                    }

                    point.Fire();
                }
            }

            return await inner.WriteAsync(container, name, content, condition, cancellationToken);
        }

        public async IAsyncEnumerable<BlobItem> ListAsync(string container, string prefix = "", [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            point.Check();
            await foreach (var item in inner.ListAsync(container, prefix, cancellationToken))
            {
                point.Check();
                yield return item;
            }
        }

        public Task<bool> DeleteAsync(string container, string name, BlobCondition condition = default, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.DeleteAsync(container, name, condition, cancellationToken);
        }
    }

    private sealed class Bus(CrashPoint point, IMessageBus inner) : IMessageBus
    {
        public Task EnsureQueueAsync(string queue, EntityOptions? options = null, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.EnsureQueueAsync(queue, options, cancellationToken);
        }

        public Task EnsureSubscriptionAsync(string topic, string subscription, SubscriptionFilter filter, EntityOptions? options = null, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.EnsureSubscriptionAsync(topic, subscription, filter, options, cancellationToken);
        }

        public Task<bool> SendAsync(string queue, OutgoingMessage message, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.SendAsync(queue, message, cancellationToken);
        }

        public Task PublishAsync(string topic, OutgoingMessage message, CancellationToken cancellationToken = default)
        {
            point.Check();
            if (point._onPublish?.Invoke(topic, message) == true)
            {
                point.Fire();
            }

            return inner.PublishAsync(topic, message, cancellationToken);
        }

        public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(string entity, int maxMessages = 1, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.ReceiveAsync(entity, maxMessages, cancellationToken);
        }

        public Task CompleteAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.CompleteAsync(entity, message, cancellationToken);
        }

        public Task AbandonAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.AbandonAsync(entity, message, cancellationToken);
        }

        public Task DeadLetterAsync(string entity, ReceivedMessage message, string reason, string description, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.DeadLetterAsync(entity, message, reason, description, cancellationToken);
        }

        public Task<DateTimeOffset> RenewLockAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.RenewLockAsync(entity, message, cancellationToken);
        }

        public Task<IReadOnlyList<DeadLetteredMessage>> PeekDeadLettersAsync(string entity, int maxMessages = 100, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.PeekDeadLettersAsync(entity, maxMessages, cancellationToken);
        }

        public Task<int> RequeueDeadLettersAsync(string entity, CancellationToken cancellationToken = default)
        {
            point.Check();
            return inner.RequeueDeadLettersAsync(entity, cancellationToken);
        }
    }
}

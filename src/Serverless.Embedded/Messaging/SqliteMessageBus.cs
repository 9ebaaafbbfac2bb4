using System.Text.Json;
using Microsoft.Data.Sqlite;
using Serverless.Core.Ports;

namespace Serverless.Embedded.Messaging;

/// <summary>
/// A durable broker with Service Bus semantics in one SQLite file (WAL): queues; topics that fan out to filtered
/// subscriptions when published; peek-lock receive with lock expiry and renewal; delivery counts; dead-lettering with
/// a reason, and automatically after <see cref="EntityOptions.MaxDeliveryCount"/>; duplicate detection by MessageId;
/// scheduled messages. Several processes may share the file: every operation is one immediate transaction, and a
/// message locked by a process that died is delivered again when its lock expires. Time comes from a
/// <see cref="TimeProvider"/>, so tests can move it.
/// </summary>
public sealed class SqliteMessageBus : IMessageBus
{
    // One writer at a time per database file within a process: SQLite allows one writer anyway, and threads of one
    // process that meet its lock fall into its busy handler's sleeps (1, 2, 5, 10… ms), which with four receivers cost
    // more than the work. Other processes still meet the busy handler.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, object> Writers = new(StringComparer.Ordinal);

    // Connections come from the pool already set up: the pragmas run once per physical connection, not per operation.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> Prepared = new();

    private readonly string _connectionString;
    private readonly TimeProvider _clock;
    private readonly object _writer;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (EntityRow Row, long ReadAt)> _entities = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _sweptDuplicatesAt = new(StringComparer.Ordinal);

    /// <summary>Opens (creating if needed) the broker in <paramref name="path"/>.</summary>
    public SqliteMessageBus(string path, TimeProvider? clock = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        _clock = clock ?? TimeProvider.System;
        _writer = Writers.GetOrAdd(Path.GetFullPath(path), _ => new object());
        using var connection = Open();
        Execute(connection, null, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS entities (
                name TEXT PRIMARY KEY, topic TEXT NULL, filter TEXT NOT NULL, lock_ms INTEGER NOT NULL,
                max_deliveries INTEGER NOT NULL, dedup_ms INTEGER NULL);
            CREATE TABLE IF NOT EXISTS messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, message_id TEXT NOT NULL, body TEXT NOT NULL,
                properties TEXT NOT NULL, enqueued_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
                delivery_count INTEGER NOT NULL DEFAULT 0, lock_token TEXT NULL,
                dead_lettered INTEGER NOT NULL DEFAULT 0, reason TEXT NULL, description TEXT NULL);
            CREATE INDEX IF NOT EXISTS messages_ready ON messages (entity, dead_lettered, visible_at, seq);
            CREATE TABLE IF NOT EXISTS duplicates (
                entity TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (entity, message_id));
            CREATE INDEX IF NOT EXISTS duplicates_expiry ON duplicates (entity, expires_at);
            """);
    }

    /// <inheritdoc />
    public Task EnsureQueueAsync(string queue, EntityOptions? options = null, CancellationToken cancellationToken = default)
    {
        Upsert(queue, null, SubscriptionFilter.All, options ?? new EntityOptions());
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task EnsureSubscriptionAsync(string topic, string subscription, SubscriptionFilter filter, EntityOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        Upsert(SubscriptionEntity(topic, subscription), topic, filter, (options ?? new EntityOptions()) with { DuplicateDetectionWindow = null });
        return Task.CompletedTask;
    }

    /// <summary>The entity name of a topic subscription.</summary>
    public static string SubscriptionEntity(string topic, string subscription) => $"{topic}/subscriptions/{subscription}";

    /// <inheritdoc />
    public Task<bool> SendAsync(string queue, OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var now = Now();
        using var gate = Gate();
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        var entity = CachedEntity(connection, transaction, queue) ?? throw new InvalidOperationException($"Queue '{queue}' does not exist.");
        if (entity.DedupMs is { } window)
        {
            // A row whose window has passed is taken over (no longer a duplicate); expired rows are swept every few
            // seconds rather than on every send.
            if (now - _sweptDuplicatesAt.GetValueOrDefault(queue, long.MinValue / 2) > 5000)
            {
                _sweptDuplicatesAt[queue] = now;
                Execute(connection, transaction, "DELETE FROM duplicates WHERE entity = $e AND expires_at <= $now", ("$e", queue), ("$now", now));
            }

            var inserted = Execute(connection, transaction, """
                INSERT INTO duplicates (entity, message_id, expires_at) VALUES ($e, $id, $exp)
                ON CONFLICT (entity, message_id) DO UPDATE SET expires_at = $exp WHERE expires_at <= $now
                """, ("$e", queue), ("$id", message.MessageId), ("$exp", now + window), ("$now", now));
            if (inserted == 0)
            {
                transaction.Commit();
                return Task.FromResult(false);
            }
        }

        Insert(connection, transaction, queue, message, now);
        transaction.Commit();
        return Task.FromResult(true);
    }

    /// <inheritdoc />
    public Task PublishAsync(string topic, OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var now = Now();
        using var gate = Gate();
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        var subscriptions = new List<(string Name, string Filter)>();
        using (var command = Command(connection, transaction, "SELECT name, filter FROM entities WHERE topic = $t", ("$t", topic)))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                subscriptions.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        foreach (var (name, filter) in subscriptions)
        {
            if (ParseFilter(filter).Matches(message.Properties))
            {
                Insert(connection, transaction, name, message, now);
            }
        }

        transaction.Commit();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ReceivedMessage>> ReceiveAsync(string entity, int maxMessages = 1, CancellationToken cancellationToken = default)
    {
        var now = Now();
        using var gate = Gate();
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        var options = CachedEntity(connection, transaction, entity) ?? throw new InvalidOperationException($"Queue or subscription '{entity}' does not exist.");
        var candidates = new List<(long Seq, string MessageId, string Body, string Properties, long EnqueuedAt, int Deliveries)>();
        using (var command = Command(connection, transaction, """
            SELECT seq, message_id, body, properties, enqueued_at, delivery_count FROM messages
            WHERE entity = $e AND dead_lettered = 0 AND visible_at <= $now ORDER BY seq LIMIT $n
            """, ("$e", entity), ("$now", now), ("$n", maxMessages)))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                candidates.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4), reader.GetInt32(5)));
            }
        }

        var received = new List<ReceivedMessage>();
        foreach (var c in candidates)
        {
            if (c.Deliveries >= options.MaxDeliveries)
            {
                Execute(connection, transaction, """
                    UPDATE messages SET dead_lettered = 1, lock_token = NULL, reason = 'MaxDeliveryCountExceeded',
                    description = $d WHERE seq = $s
                    """, ("$s", c.Seq), ("$d", $"Delivered {c.Deliveries} times without being completed (max {options.MaxDeliveries})."));
                continue;
            }

            var token = $"{c.Seq}:{Guid.NewGuid():N}";
            var lockedUntil = now + options.LockMs;
            Execute(connection, transaction, "UPDATE messages SET lock_token = $t, visible_at = $v, delivery_count = delivery_count + 1 WHERE seq = $s",
                ("$t", token), ("$v", lockedUntil), ("$s", c.Seq));
            received.Add(new ReceivedMessage(token, c.MessageId, c.Body, ParseProperties(c.Properties), c.Deliveries + 1,
                DateTimeOffset.FromUnixTimeMilliseconds(c.EnqueuedAt), DateTimeOffset.FromUnixTimeMilliseconds(lockedUntil)));
        }

        transaction.Commit();
        return Task.FromResult<IReadOnlyList<ReceivedMessage>>(received);
    }

    /// <inheritdoc />
    public Task CompleteAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        Settle(entity, message, "DELETE FROM messages WHERE seq = $s AND lock_token = $t AND visible_at > $now");

    /// <inheritdoc />
    public Task AbandonAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default) =>
        Settle(entity, message, "UPDATE messages SET lock_token = NULL, visible_at = $now WHERE seq = $s AND lock_token = $t AND visible_at > $now");

    /// <inheritdoc />
    public Task DeadLetterAsync(string entity, ReceivedMessage message, string reason, string description, CancellationToken cancellationToken = default) =>
        Settle(entity, message, """
            UPDATE messages SET dead_lettered = 1, lock_token = NULL, reason = $r, description = $d
            WHERE seq = $s AND lock_token = $t AND visible_at > $now
            """, ("$r", reason), ("$d", description));

    /// <inheritdoc />
    public async Task<DateTimeOffset> RenewLockAsync(string entity, ReceivedMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        long lockMs;
        using (var connection = Open())
        {
            lockMs = Entity(connection, null, entity)?.LockMs ?? throw new InvalidOperationException($"'{entity}' does not exist.");
        }

        var until = Now() + lockMs;
        await Settle(entity, message, "UPDATE messages SET visible_at = $v WHERE seq = $s AND lock_token = $t AND visible_at > $now", ("$v", until));
        return DateTimeOffset.FromUnixTimeMilliseconds(until);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<DeadLetteredMessage>> PeekDeadLettersAsync(string entity, int maxMessages = 100, CancellationToken cancellationToken = default)
    {
        using var connection = Open();
        using var command = Command(connection, null, """
            SELECT message_id, body, properties, reason, description, delivery_count FROM messages
            WHERE entity = $e AND dead_lettered = 1 ORDER BY seq LIMIT $n
            """, ("$e", entity), ("$n", maxMessages));
        using var reader = command.ExecuteReader();
        var result = new List<DeadLetteredMessage>();
        while (reader.Read())
        {
            result.Add(new DeadLetteredMessage(entity, reader.GetString(0), reader.GetString(1), ParseProperties(reader.GetString(2)),
                reader.IsDBNull(3) ? "" : reader.GetString(3), reader.IsDBNull(4) ? "" : reader.GetString(4), reader.GetInt32(5)));
        }

        return Task.FromResult<IReadOnlyList<DeadLetteredMessage>>(result);
    }

    /// <inheritdoc />
    public Task<int> RequeueDeadLettersAsync(string entity, CancellationToken cancellationToken = default)
    {
        using var gate = Gate();
        using var connection = Open();
        var count = Execute(connection, null, """
            UPDATE messages SET dead_lettered = 0, delivery_count = 0, visible_at = $now, reason = NULL, description = NULL
            WHERE entity = $e AND dead_lettered = 1
            """, ("$e", entity), ("$now", Now()));
        return Task.FromResult(count);
    }

    private Task Settle(string entity, ReceivedMessage message, string sql, params (string, object?)[] extra)
    {
        ArgumentNullException.ThrowIfNull(message);
        var seq = long.Parse(message.LockToken.AsSpan(0, message.LockToken.IndexOf(':')));
        using var gate = Gate();
        using var connection = Open();
        var changed = Execute(connection, null, sql, [("$s", seq), ("$t", message.LockToken), ("$now", Now()), .. extra]);
        return changed == 1
            ? Task.CompletedTask
            : throw new MessageLockLostException($"The lock on message '{message.MessageId}' in '{entity}' was lost (it expired or the message was already settled).");
    }

    private void Upsert(string name, string? topic, SubscriptionFilter filter, EntityOptions options)
    {
        _entities.TryRemove(name, out _);
        using var gate = Gate();
        using var connection = Open();
        Execute(connection, null, """
            INSERT INTO entities (name, topic, filter, lock_ms, max_deliveries, dedup_ms) VALUES ($n, $t, $f, $l, $m, $d)
            ON CONFLICT (name) DO UPDATE SET topic = $t, filter = $f, lock_ms = $l, max_deliveries = $m, dedup_ms = $d
            """, ("$n", name), ("$t", topic), ("$f", JsonSerializer.Serialize(filter.Accepts)),
            ("$l", (long)options.LockDuration.TotalMilliseconds), ("$m", options.MaxDeliveryCount),
            ("$d", options.DuplicateDetectionWindow is { } w ? (long)w.TotalMilliseconds : null));
    }

    private static void Insert(SqliteConnection connection, SqliteTransaction transaction, string entity, OutgoingMessage message, long now) =>
        Execute(connection, transaction, """
            INSERT INTO messages (entity, message_id, body, properties, enqueued_at, visible_at) VALUES ($e, $id, $b, $p, $now, $v)
            """, ("$e", entity), ("$id", message.MessageId), ("$b", message.Body),
            ("$p", JsonSerializer.Serialize(message.Properties ?? new Dictionary<string, string>())), ("$now", now),
            ("$v", message.ScheduledFor is { } at ? Math.Max(now, at.ToUnixTimeMilliseconds()) : now));

    private sealed record EntityRow(long LockMs, int MaxDeliveries, long? DedupMs);

    /// <summary>
    /// An entity's options, read at most every two seconds per entity (entities change only when a host sets up its
    /// topology): sends and receives skip a query. A missing entity is never cached.
    /// </summary>
    private EntityRow? CachedEntity(SqliteConnection connection, SqliteTransaction transaction, string name)
    {
        var now = Environment.TickCount64;
        if (_entities.TryGetValue(name, out var cached) && now - cached.ReadAt < 2000)
        {
            return cached.Row;
        }

        var row = Entity(connection, transaction, name);
        if (row is not null)
        {
            _entities[name] = (row, now);
        }

        return row;
    }

    private static EntityRow? Entity(SqliteConnection connection, SqliteTransaction? transaction, string name)
    {
        using var command = Command(connection, transaction, "SELECT lock_ms, max_deliveries, dedup_ms FROM entities WHERE name = $n", ("$n", name));
        using var reader = command.ExecuteReader();
        return reader.Read() ? new EntityRow(reader.GetInt64(0), reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetInt64(2)) : null;
    }

    private static SubscriptionFilter ParseFilter(string json) =>
        new(JsonSerializer.Deserialize<Dictionary<string, string[]>>(json)!.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value));

    private static Dictionary<string, string> ParseProperties(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [];

    private long Now() => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Holds this process's write turn on the file until disposed (after the connection, declared later, is).</summary>
    private WriteTurn Gate()
    {
        // Bounded like SQLite's own busy timeout: a thread queued behind others never waits longer than one would.
        if (!Monitor.TryEnter(_writer, TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("The embedded broker's database stayed busy for 30 s within this process.");
        }

        return new WriteTurn(_writer);
    }

    private readonly struct WriteTurn(object writer) : IDisposable
    {
        public void Dispose() => Monitor.Exit(writer);
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        if (!Prepared.TryGetValue(connection.Handle!, out _))
        {
            using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL;";
            pragma.ExecuteNonQuery();
            Prepared.AddOrUpdate(connection.Handle!, Writers);
        }

        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private static int Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        return command.ExecuteNonQuery();
    }
}

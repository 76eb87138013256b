using System.Collections.Concurrent;
using System.Data;
using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>
/// Session liveness, PostgreSQL's own. A process's lease is renewed by its heartbeat on any pooled connection (see
/// Processes). With session liveness, each process also holds a session-level advisory lock on a dedicated connection that does
/// nothing but hold it and wait: a server that ends the session (terminated backend, crash-restart, failover, a proxy
/// that closes) is noticed at once and the lock is taken again as soon as the server answers. Another session that
/// can take the lock knows the process's session is gone; maintenance recovers its claims only once the lock has stayed
/// free for a grace window (DESIGN §2.4: one probe of one connection is never proof of death).
/// </summary>
public sealed partial class PostgreSqlStorage
{
    private readonly ConcurrentDictionary<long, LivenessSession> _sessions = new();
    private volatile bool _disposed;

    /// <inheritdoc />
    /// <remarks>
    /// One statement on a pooled connection: each candidate's lock is tried and, when taken, released again in
    /// the same statement. Only rows registered with session liveness are probed. A process registered through this
    /// store (even this instance) reads as alive, since its lock belongs to its dedicated session. Lock keys are the
    /// ids' low 32 bits, so two ids 2^32 apart share a key: a dead process may then read as alive (its lease expiry
    /// still catches it), never the reverse, since registration refuses a key another session holds.
    /// </remarks>
    public async Task<IReadOnlyList<long>> ProcessesSessionEndedAsync(ProcessesSessionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.ProcessIds);
        if (parameters.ProcessIds.Count == 0)
        {
            return [];
        }

        var ids = parameters.ProcessIds.ToArray();
        var keys = Array.ConvertAll(ids, SessionLockKey);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand(ProcessesSql.ProcessesSessionEnded, connection);
            command.Parameters.Add(new NpgsqlParameter<int>("namespace", NpgsqlDbType.Integer) { TypedValue = ProcessesSql.SessionLockNamespace });
            command.Parameters.Add(new NpgsqlParameter<long[]>("process_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = ids });
            command.Parameters.Add(new NpgsqlParameter<int[]>("keys", NpgsqlDbType.Array | NpgsqlDbType.Integer) { TypedValue = keys });
            command.Parameters.Add(new NpgsqlParameter<TimeSpan>("minimum_uptime", NpgsqlDbType.Interval) { TypedValue = parameters.MinimumServerUptime });

            var ended = new List<long>();
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ended.Add(reader.GetInt64(0));
            }

            return ended;
        }
        catch (Exception e) when (e is not OperationCanceledException && connection.State == ConnectionState.Open && Pooled is not true)
        {
            // A statement that failed halfway may have taken a lock without releasing it; never hand such a
            // session back to the pool (it would make an ended process read as alive). Behind a pooler the session
            // is shared with others' work, whose locks an unlock-all would drop: there the lease decides anyway.
            await UnlockAllAsync(connection).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The second key of a process's session lock: its id's low 32 bits (the id itself below 2^31).</summary>
    internal static int SessionLockKey(long processId) => unchecked((int)processId);

    /// <summary>True while this store holds the session lock of <paramref name="processId"/> (tests).</summary>
    internal bool HoldsSession(long processId) => _sessions.TryGetValue(processId, out var session) && session.Locked;

    private static void AddSessionKey(NpgsqlParameterCollection parameters, long processId)
    {
        parameters.Add(new NpgsqlParameter<int>("namespace", NpgsqlDbType.Integer) { TypedValue = ProcessesSql.SessionLockNamespace });
        parameters.Add(new NpgsqlParameter<int>("key", NpgsqlDbType.Integer) { TypedValue = SessionLockKey(processId) });
    }

    /// <summary>Closes a process's dedicated connection, releasing its lock; nothing when it has none here.</summary>
    private async Task DropSessionAsync(long processId)
    {
        if (_sessions.TryRemove(processId, out var session))
        {
            await session.CloseAsync().ConfigureAwait(false);
        }
    }

    private void DropSession(long processId)
    {
        if (_sessions.TryRemove(processId, out var session))
        {
            session.CloseAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>
    /// Releases a dedicated connection's locks and closes it. A pooled connection goes back to the pool, where
    /// a lock would otherwise survive until the connection is next used; a broken one is simply dropped.
    /// </summary>
    private async Task ReleaseConnectionAsync(NpgsqlConnection connection)
    {
        try
        {
            if (connection.State == ConnectionState.Open)
            {
                await UnlockAllAsync(connection).ConfigureAwait(false);
            }
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task UnlockAllAsync(NpgsqlConnection connection)
    {
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await using var command = new NpgsqlCommand(ProcessesSql.ProcessSessionUnlock, connection);
            await command.ExecuteNonQueryAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException or OperationCanceledException)
        {
            // Broken: the server ends the session, and its locks with it. Not broken: the pool does not reset what it
            // takes back (WithKeelDefaults), so it must not keep this connection and its lock. Clearing the pool closes
            // its idle connections and every busy one, this one too, as it comes back.
            if (connection.State == ConnectionState.Open)
            {
                DataSource.Clear();
            }
        }
    }

    /// <summary>
    /// A registered process's dedicated connection: holds its session lock and waits on it, so that a session the
    /// server ended is seen at once; then reconnects (backing off while the server is away) and takes the lock again
    /// while the row exists. A backend of its own that still holds the lock after its connection was given up (the
    /// network went silent, the server never saw it close) is terminated so the lock can be taken again.
    /// </summary>
    private sealed class LivenessSession(PostgreSqlStorage store, long processId, NpgsqlConnection connection)
    {
        private readonly CancellationTokenSource _stop = new();
        private NpgsqlConnection? _connection = connection;
        private int _backendPid = connection.ProcessID;
        private int _lostBackendPid;
        private Task _loop = Task.CompletedTask;

        public bool Locked => Volatile.Read(ref _connection) is not null;

        public void Start() => _loop = Task.Run(RunAsync);

        public async ValueTask CloseAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await _loop.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }

            if (Interlocked.Exchange(ref _connection, null) is { } open)
            {
                await store.ReleaseConnectionAsync(open).ConfigureAwait(false);
            }

            _stop.Dispose();
        }

        private static readonly TimeSpan ReconnectDelayCap = TimeSpan.FromMilliseconds(250);

        private async Task RunAsync()
        {
            var delay = TimeSpan.FromMilliseconds(50);
            while (!_stop.IsCancellationRequested)
            {
                var current = Volatile.Read(ref _connection);
                if (current is null)
                {
                    try
                    {
                        switch (await ReconnectAsync().ConfigureAwait(false))
                        {
                            case Relock.Gone:
                                store._sessions.TryRemove(new KeyValuePair<long, LivenessSession>(processId, this));
                                return;
                            case Relock.Locked:
                                delay = TimeSpan.FromMilliseconds(50);
                                continue;
                        }
                    }
                    catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                    {
                        return;
                    }
#pragma warning disable CA1031 // The server is away: keep trying; the lease covers the process meanwhile.
                    catch (Exception)
#pragma warning restore CA1031
                    {
                    }

                    try
                    {
                        await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }

                    // Capped at 250 ms: after a crash-restart the lock must be held again well within the others'
                    // session grace period (0.6 s with a 1.2 s lease); a 1 s cap let a live process look dead.
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, ReconnectDelayCap.Ticks));
                    continue;
                }

                try
                {
                    await current.WaitAsync(_stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // Any error ends this session: the lock went with it; take it again.
                catch (Exception)
#pragma warning restore CA1031
                {
                    _lostBackendPid = _backendPid;
                    if (Interlocked.CompareExchange(ref _connection, null, current) == current)
                    {
                        await current.DisposeAsync().ConfigureAwait(false);
                    }
                }
            }
        }

        private async Task<Relock> ReconnectAsync()
        {
            var fresh = await store.OpenAsync(_stop.Token).ConfigureAwait(false);
            try
            {
                object? locked;
                await using (var command = new NpgsqlCommand(ProcessesSql.ProcessHeartbeatRelock, fresh))
                {
                    command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = processId });
                    AddSessionKey(command.Parameters, processId);
                    locked = await command.ExecuteScalarAsync(_stop.Token).ConfigureAwait(false);
                }

                if (locked is null)
                {
                    await store.ReleaseConnectionAsync(fresh).ConfigureAwait(false);
                    return Relock.Gone; // Pruned: the heartbeat tells the process.
                }

                if (locked is true)
                {
                    _backendPid = fresh.ProcessID;
                    Volatile.Write(ref _connection, fresh);
                    return Relock.Locked;
                }

                // Someone holds the key: a probe for an instant, or a backend of ours the network cut off.
                await using (var holder = new NpgsqlCommand(ProcessesSql.ProcessSessionHolder, fresh))
                {
                    AddSessionKey(holder.Parameters, processId);
                    if (await holder.ExecuteScalarAsync(_stop.Token).ConfigureAwait(false) is int pid && pid != 0 && pid == _lostBackendPid)
                    {
                        await using var terminate = new NpgsqlCommand(ProcessesSql.ProcessSessionTerminate, fresh);
                        terminate.Parameters.Add(new NpgsqlParameter<int>("pid", NpgsqlDbType.Integer) { TypedValue = pid });
                        await terminate.ExecuteScalarAsync(_stop.Token).ConfigureAwait(false);
                    }
                }

                await store.ReleaseConnectionAsync(fresh).ConfigureAwait(false);
                return Relock.Later;
            }
            catch
            {
                // The relock may have taken the lock before the failure: the pool must not keep it (no reset on close).
                await store.ReleaseConnectionAsync(fresh).ConfigureAwait(false);
                throw;
            }
        }

        private enum Relock
        {
            Locked,
            Later,
            Gone,
        }
    }
}

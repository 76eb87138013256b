using System.Collections.Concurrent;
using System.Data;
using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>
/// Session liveness: every process registered through this store holds a session-level advisory lock on a
/// dedicated connection, so another session that can take the lock knows the process's session is gone.
/// </summary>
public sealed partial class PostgreSqlStorage
{
    /// <summary>How many fresh rows a registration tries when its lock key is held by another session.</summary>
    private const int RegisterAttempts = 5;

    private readonly ConcurrentDictionary<long, ProcessSession> _sessions = new();
    private volatile bool _disposed;

    /// <inheritdoc />
    public async Task<long> ProcessRegisterAsync(ProcessRegisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (var attempt = 1; ; attempt++)
        {
            // One transaction on the connection that will hold the lock: the row becomes visible only once its
            // lock is held, so no other session ever sees the row without it.
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            long id;
            try
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (var command = new NpgsqlCommand(PostgreSqlStatements.ProcessRegister, connection, transaction))
                {
                    var p = command.Parameters;
                    p.Add(new NpgsqlParameter<string>("name", NpgsqlDbType.Text) { TypedValue = parameters.Name });
                    p.Add(new NpgsqlParameter<string>("kind", NpgsqlDbType.Text) { TypedValue = parameters.Kind });
                    p.Add(new NpgsqlParameter<int>("pid", NpgsqlDbType.Integer) { TypedValue = parameters.Pid });
                    p.Add(new NpgsqlParameter<string>("hostname", NpgsqlDbType.Text) { TypedValue = parameters.Hostname });
                    p.Add(new NpgsqlParameter<DateTimeOffset>("started_at", NpgsqlDbType.TimestampTz) { TypedValue = parameters.ProcessStartedAt.ToUniversalTime() });
                    p.Add(new NpgsqlParameter("supervisor_id", NpgsqlDbType.Bigint) { Value = (object?)parameters.SupervisorId ?? DBNull.Value });
                    p.Add(new NpgsqlParameter<string>("metadata", NpgsqlDbType.Text) { TypedValue = string.IsNullOrEmpty(parameters.Metadata) ? "{}" : parameters.Metadata });
                    p.Add(Now(parameters.Now));
                    id = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                }

                bool locked;
                await using (var command = new NpgsqlCommand(PostgreSqlStatements.ProcessSessionLock, connection, transaction))
                {
                    AddSessionKey(command.Parameters, id);
                    locked = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
                }

                if (!locked)
                {
                    // Another session holds this key (an id 2^32 away, or a liveness probe of one): this row could
                    // not prove its process alive. Drop it and take the next id.
                    await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                    await ReleaseConnectionAsync(connection).ConfigureAwait(false);
                    if (attempt >= RegisterAttempts)
                    {
                        throw new InvalidOperationException($"could not take a session lock for a new process after {attempt} attempts: other sessions hold every key tried");
                    }

                    continue;
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // A session lock survives a rollback: release whatever this connection took before it goes.
                await ReleaseConnectionAsync(connection).ConfigureAwait(false);
                throw;
            }

            _sessions[id] = new ProcessSession(id, connection);
            if (_disposed)
            {
                await DropSessionAsync(id).ConfigureAwait(false);
                throw new ObjectDisposedException(GetType().FullName);
            }

            return id;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// For a process registered through this store the heartbeat runs on its dedicated connection. When that
    /// connection fails, it is closed and a new one replaces it, re-taking the lock only while the row still
    /// exists; if the new one cannot be opened either, the error propagates (the caller retries) and the next
    /// heartbeat reconnects. Returning false also closes the dedicated connection.
    /// </remarks>
    public async Task<bool> ProcessHeartbeatAsync(ProcessHeartbeatParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!_sessions.TryGetValue(parameters.ProcessId, out var session))
        {
            return await HeartbeatPooledAsync(parameters, cancellationToken).ConfigureAwait(false);
        }

        await session.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (session.Closed)
            {
                return await HeartbeatPooledAsync(parameters, cancellationToken).ConfigureAwait(false);
            }

            if (session.Connection is { } existing)
            {
                try
                {
                    return await HeartbeatOnSessionAsync(session, existing, parameters, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Broken (server restart, terminated backend, network): its lock is gone or going with it.
                    session.Connection = null;
                    session.Locked = false;
                    await ReleaseConnectionAsync(existing).ConfigureAwait(false);
                }
            }

            // After a server restart the pool may still hold idle connections to the old server: a fresh one
            // that turns out dead is replaced once more before the error goes to the caller.
            for (var attempt = 1; ; attempt++)
            {
                var fresh = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                session.Connection = fresh;
                try
                {
                    return await HeartbeatOnSessionAsync(session, fresh, parameters, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException && attempt == 1 && fresh.State != ConnectionState.Open)
                {
                    session.Connection = null;
                    session.Locked = false;
                    await ReleaseConnectionAsync(fresh).ConfigureAwait(false);
                }
                catch
                {
                    session.Connection = null;
                    session.Locked = false;
                    await ReleaseConnectionAsync(fresh).ConfigureAwait(false);
                    throw;
                }
            }
        }
        finally
        {
            session.Gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// One statement on a pooled connection: each candidate's lock is tried and, when taken, released again in
    /// the same statement. A process registered through this store (even this instance) reads as alive, since
    /// its lock belongs to its dedicated session. Lock keys are the ids' low 32 bits, so two ids 2^32 apart
    /// share a key: a dead process may then read as alive (its heartbeat expiry still catches it), never the
    /// reverse, since registration refuses a key another session holds. A live process whose dedicated
    /// connection just broke reads as ended until its next heartbeat reconnects it.
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
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = new NpgsqlCommand(PostgreSqlStatements.ProcessesSessionEnded, connection);
            command.Parameters.Add(new NpgsqlParameter<int>("namespace", NpgsqlDbType.Integer) { TypedValue = PostgreSqlStatements.SessionLockNamespace });
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
        catch (Exception e) when (e is not OperationCanceledException && connection.State == ConnectionState.Open)
        {
            // A statement that failed halfway may have taken a lock without releasing it; never hand such a
            // session back to the pool (it would make an ended process read as alive).
            await UnlockAllAsync(connection).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The second key of a process's session lock: its id's low 32 bits (the id itself below 2^31).</summary>
    internal static int SessionLockKey(long processId) => unchecked((int)processId);

    private static void AddSessionKey(NpgsqlParameterCollection parameters, long processId)
    {
        parameters.Add(new NpgsqlParameter<int>("namespace", NpgsqlDbType.Integer) { TypedValue = PostgreSqlStatements.SessionLockNamespace });
        parameters.Add(new NpgsqlParameter<int>("key", NpgsqlDbType.Integer) { TypedValue = SessionLockKey(processId) });
    }

    private async Task<bool> HeartbeatPooledAsync(ProcessHeartbeatParams parameters, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(PostgreSqlStatements.ProcessHeartbeat, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(Now(parameters.Now));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>Runs a heartbeat on a session's connection (the caller holds its gate); false closes the session.</summary>
    private async Task<bool> HeartbeatOnSessionAsync(ProcessSession session, NpgsqlConnection connection, ProcessHeartbeatParams parameters, CancellationToken cancellationToken)
    {
        bool alive;
        if (session.Locked)
        {
            await using var command = new NpgsqlCommand(PostgreSqlStatements.ProcessHeartbeat, connection);
            command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
            command.Parameters.Add(Now(parameters.Now));
            alive = await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }
        else
        {
            await using var command = new NpgsqlCommand(PostgreSqlStatements.ProcessHeartbeatRelock, connection);
            command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
            command.Parameters.Add(Now(parameters.Now));
            AddSessionKey(command.Parameters, parameters.ProcessId);
            var locked = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            alive = locked is bool;

            // False: another session holds the key for now (a probe, or the old session not yet gone); the
            // heartbeat still counts and the next one tries the lock again.
            session.Locked = locked is true;
        }

        if (!alive)
        {
            _sessions.TryRemove(new KeyValuePair<long, ProcessSession>(session.ProcessId, session));
            session.Closed = true;
            session.Connection = null;
            session.Locked = false;
            await ReleaseConnectionAsync(connection).ConfigureAwait(false);
        }

        return alive;
    }

    /// <summary>Closes a process's dedicated connection, releasing its lock; nothing when it has none here.</summary>
    private async Task DropSessionAsync(long processId)
    {
        if (!_sessions.TryRemove(processId, out var session))
        {
            return;
        }

        await session.Gate.WaitAsync().ConfigureAwait(false);
        try
        {
            session.Closed = true;
            if (session.Connection is { } connection)
            {
                session.Connection = null;
                session.Locked = false;
                await ReleaseConnectionAsync(connection).ConfigureAwait(false);
            }
        }
        finally
        {
            session.Gate.Release();
        }
    }

    private void DropSession(long processId)
    {
        if (!_sessions.TryRemove(processId, out var session))
        {
            return;
        }

        session.Gate.Wait();
        try
        {
            session.Closed = true;
            if (session.Connection is { } connection)
            {
                session.Connection = null;
                session.Locked = false;
                try
                {
                    if (connection.State == ConnectionState.Open)
                    {
                        using var command = new NpgsqlCommand(PostgreSqlStatements.ProcessSessionUnlock, connection);
                        command.ExecuteNonQuery();
                    }
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException)
                {
                    // Broken: the server ends the session, and its lock with it.
                }
                finally
                {
                    connection.Dispose();
                }
            }
        }
        finally
        {
            session.Gate.Release();
        }
    }

    /// <summary>
    /// Releases a dedicated connection's locks and closes it. A pooled connection goes back to the pool, where
    /// a lock would otherwise survive until the connection is next used; a broken one is simply dropped.
    /// </summary>
    private static async Task ReleaseConnectionAsync(NpgsqlConnection connection)
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

    private static async Task UnlockAllAsync(NpgsqlConnection connection)
    {
        try
        {
            await using var command = new NpgsqlCommand(PostgreSqlStatements.ProcessSessionUnlock, connection);
            await command.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException)
        {
            // Broken: the server ends the session, and its locks with it.
        }
    }

    /// <summary>A registered process's dedicated connection; its gate serializes heartbeats and closing.</summary>
    private sealed class ProcessSession(long processId, NpgsqlConnection connection)
    {
        public long ProcessId { get; } = processId;

        public SemaphoreSlim Gate { get; } = new(1, 1);

        public NpgsqlConnection? Connection { get; set; } = connection;

        public bool Locked { get; set; } = true;

        public bool Closed { get; set; }
    }
}

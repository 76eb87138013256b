using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>
/// Processes: registration (with its session lock, see Sessions), heartbeats (the lease), graceful stops, claims that
/// ignored their cancellation, deregistration, and the list of processes.
/// </summary>
public sealed partial class PostgreSqlStorage
{
    /// <summary>How many fresh rows a registration tries when its lock key is held by another session.</summary>
    private const int RegisterAttempts = 5;

    /// <inheritdoc />
    public async Task<long> ProcessRegisterAsync(ProcessRegisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ObjectDisposedException.ThrowIf(_disposed, this);
        await DataSourceAsync(cancellationToken).ConfigureAwait(false);
        if (!UsesSessions)
        {
            await using var pooled = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var insert = RegisterCommand(pooled, null, parameters, "lease");
            return (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        for (var attempt = 1; ; attempt++)
        {
            // One transaction on the connection that will hold the lock: the row becomes visible only once its
            // lock is held, so no other session ever sees the row without it.
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            long id;
            try
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (var command = RegisterCommand(connection, transaction, parameters, "session"))
                {
                    id = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                }

                bool locked;
                await using (var command = new NpgsqlCommand(ProcessesSql.ProcessSessionLock, connection, transaction))
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

            var session = new LivenessSession(this, id, connection);
            _sessions[id] = session;
            session.Start();
            if (_disposed)
            {
                await DropSessionAsync(id).ConfigureAwait(false);
                throw new ObjectDisposedException(GetType().FullName);
            }

            return id;
        }
    }

    /// <inheritdoc />
    /// <remarks>On a pooled connection: the lease is the database's to keep, whichever connection renews it.</remarks>
    public async Task<ProcessHeartbeatResult> ProcessHeartbeatAsync(ProcessHeartbeatParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ProcessHeartbeatResult result;
        await using (var connection = await OpenAsync(cancellationToken).ConfigureAwait(false))
        {
            await using var command = new NpgsqlCommand(parameters.ReturnClaims ? ProcessesSql.ProcessHeartbeatWithClaims : ProcessesSql.ProcessHeartbeat, connection);
            command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
            command.Parameters.Add(new NpgsqlParameter<TimeSpan>("lease", NpgsqlDbType.Interval) { TypedValue = parameters.LeaseDuration });
            command.Parameters.Add(Now(parameters.Now));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            result = !await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                ? ProcessHeartbeatResult.Gone
                : new ProcessHeartbeatResult(true, parameters.ReturnClaims ? reader.GetFieldValue<long[]>(0) : null);
        }

        if (!result.Alive)
        {
            await DropSessionAsync(parameters.ProcessId).ConfigureAwait(false); // Pruned: let its lock go.
        }

        return result;
    }

    /// <inheritdoc />
    public async Task<bool> ProcessStoppingAsync(ProcessStoppingParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(ProcessesSql.ProcessStopping, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(Now(parameters.Now));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public async Task<int> ProcessDeregisterAsync(ProcessDeregisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // Release and delete go in one round trip; the workflows of jobs the release discarded (their run had been asked
        // to stop) settle before the commit, in the same transaction.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection, transaction);
        var release = new NpgsqlBatchCommand(ClaimsSql.ClaimsReleaseAll);
        release.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        release.Parameters.Add(Now(parameters.Now));
        AddRunEnding(release.Parameters, parameters.Reason, parameters.Runner);
        var delete = new NpgsqlBatchCommand(ProcessesSql.ProcessDelete);
        delete.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        batch.BatchCommands.Add(release);
        batch.BatchCommands.Add(delete);

        var released = 0;
        List<PermitRelease>? releases = null;
        long[]? workflowCancelled = null;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                released = checked((int)reader.GetInt64(0));
                releases = ReadReleases(reader, 2, 3);
                workflowCancelled = ReadWorkflowCancelled(reader);
            }

            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
            }
        }

        await SettleCancelledAsync(connection, transaction, workflowCancelled, parameters.Now, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Jobs whose run had been asked to stop were discarded and gave their permits back: promote blocked jobs.
        if (releases is not null)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        // The row is gone: close the dedicated connection, which releases the process's session lock.
        await DropSessionAsync(parameters.ProcessId).ConfigureAwait(false);
        return released;
    }

    /// <inheritdoc />
    public async Task<int> ClaimsMarkUnresponsiveAsync(ClaimsMarkUnresponsiveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.ClaimIds.Count == 0)
        {
            return 0;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(ProcessesSql.ClaimsMarkUnresponsive, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(new NpgsqlParameter<long[]>("claim_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. parameters.ClaimIds] });
        command.Parameters.Add(Now(parameters.Now));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ProcessInfo>> ProcessesListAsync(ProcessesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(ProcessesSql.ProcessesList, connection);
        command.Parameters.Add(Interval("stale_after", parameters.StaleAfter));
        command.Parameters.Add(Now(parameters.Now));

        var list = new List<ProcessInfo>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new ProcessInfo(
                reader.GetInt64(0),
                reader.GetString(1),
                reader.GetString(2),
                reader.GetInt32(3),
                reader.GetString(4),
                reader.GetFieldValue<DateTimeOffset>(5),
                reader.IsDBNull(6) ? null : reader.GetInt64(6),
                reader.GetFieldValue<DateTimeOffset>(7),
                Age(reader, 8),
                reader.GetString(9),
                checked((int)reader.GetInt64(10)))
            {
                LeaseExpiresAt = reader.GetFieldValue<DateTimeOffset>(11),
                LeaseRemaining = reader.GetFieldValue<TimeSpan>(12),
                HostId = reader.IsDBNull(13) ? null : reader.GetString(13),
                PidStartTicks = reader.IsDBNull(14) ? null : reader.GetInt64(14),
                Liveness = reader.GetString(15),
                StoppingAt = NullableTime(reader, 16),
            });
        }

        return list;
    }

    private static NpgsqlCommand RegisterCommand(NpgsqlConnection connection, NpgsqlTransaction? transaction, ProcessRegisterParams parameters, string liveness)
    {
        var command = new NpgsqlCommand(ProcessesSql.ProcessRegister, connection, transaction);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string>("name", NpgsqlDbType.Text) { TypedValue = parameters.Name });
        p.Add(new NpgsqlParameter<string>("kind", NpgsqlDbType.Text) { TypedValue = parameters.Kind });
        p.Add(new NpgsqlParameter<int>("pid", NpgsqlDbType.Integer) { TypedValue = parameters.Pid });
        p.Add(new NpgsqlParameter<string>("hostname", NpgsqlDbType.Text) { TypedValue = parameters.Hostname });
        p.Add(new NpgsqlParameter<DateTimeOffset>("started_at", NpgsqlDbType.TimestampTz) { TypedValue = parameters.ProcessStartedAt.ToUniversalTime() });
        p.Add(new NpgsqlParameter("supervisor_id", NpgsqlDbType.Bigint) { Value = (object?)parameters.SupervisorId ?? DBNull.Value });
        p.Add(new NpgsqlParameter<string>("metadata", NpgsqlDbType.Text) { TypedValue = string.IsNullOrEmpty(parameters.Metadata) ? "{}" : parameters.Metadata });
        p.Add(new NpgsqlParameter<TimeSpan>("lease", NpgsqlDbType.Interval) { TypedValue = parameters.LeaseDuration });
        p.Add(new NpgsqlParameter("host_id", NpgsqlDbType.Text) { Value = (object?)parameters.HostId ?? DBNull.Value });
        p.Add(new NpgsqlParameter("pid_start_ticks", NpgsqlDbType.Bigint) { Value = (object?)parameters.PidStartTicks ?? DBNull.Value });
        p.Add(new NpgsqlParameter<string>("liveness", NpgsqlDbType.Text) { TypedValue = liveness });
        p.Add(Now(parameters.Now));
        return command;
    }
}

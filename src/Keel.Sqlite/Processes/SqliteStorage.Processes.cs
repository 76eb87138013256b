using System.Globalization;
using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>
/// Processes: registration, heartbeats (the lease), graceful stops, claims that ignored their cancellation,
/// deregistration, and the list of processes.
/// </summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<long> ProcessRegisterAsync(ProcessRegisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var insert = Command(connection, transaction, ProcessesSql.ProcessRegister);
                insert.Parameters.AddWithValue("@name", parameters.Name);
                insert.Parameters.AddWithValue("@kind", parameters.Kind);
                insert.Parameters.AddWithValue("@pid", parameters.Pid);
                insert.Parameters.AddWithValue("@hostname", parameters.Hostname);
                insert.Parameters.AddWithValue("@started_at", TimeEncoding.ToMicros(parameters.ProcessStartedAt));
                insert.Parameters.AddWithValue("@supervisor_id", (object?)parameters.SupervisorId ?? DBNull.Value);
                insert.Parameters.AddWithValue("@metadata", parameters.Metadata);
                insert.Parameters.AddWithValue("@now", Micros(parameters.Now));
                insert.Parameters.AddWithValue("@lease", parameters.LeaseDuration.Ticks / 10);
                insert.Parameters.AddWithValue("@host_id", (object?)parameters.HostId ?? DBNull.Value);
                insert.Parameters.AddWithValue("@pid_start_ticks", (object?)parameters.PidStartTicks ?? DBNull.Value);
                return Convert.ToInt64(await insert.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<ProcessHeartbeatResult> ProcessHeartbeatAsync(ProcessHeartbeatParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using (var update = Command(connection, transaction, ProcessesSql.ProcessHeartbeat))
                {
                    update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    update.Parameters.AddWithValue("@now", Micros(parameters.Now));
                    update.Parameters.AddWithValue("@lease", parameters.LeaseDuration.Ticks / 10);
                    if (await update.ExecuteNonQueryAsync(cancellationToken) != 1)
                    {
                        return ProcessHeartbeatResult.Gone;
                    }
                }

                if (!parameters.ReturnClaims)
                {
                    return new ProcessHeartbeatResult(true, null);
                }

                var claims = new List<long>();
                await using var select = Command(connection, transaction, ProcessesSql.ProcessClaims);
                select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    claims.Add(reader.GetInt64(0));
                }

                return new ProcessHeartbeatResult(true, claims);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> ProcessStoppingAsync(ProcessStoppingParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = Command(connection, transaction, ProcessesSql.ProcessStopping);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                update.Parameters.AddWithValue("@now", Micros(parameters.Now));
                return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> ProcessDeregisterAsync(ProcessDeregisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                // Releasing and deleting in one transaction: no instant exists where the row is gone but a claim remains.
                var released = await ReleaseClaimsAsync(connection, transaction, parameters.ProcessId, null, parameters.Reason, parameters.Runner, Micros(parameters.Now), cancellationToken);
                await using var delete = Command(connection, transaction, ProcessesSql.ProcessDelete);
                delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                await delete.ExecuteNonQueryAsync(cancellationToken);
                return released;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> ClaimsMarkUnresponsiveAsync(ClaimsMarkUnresponsiveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = Command(connection, transaction, ProcessesSql.ClaimsMarkUnresponsive);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                update.Parameters.AddWithValue("@claim_ids", JsonArray(parameters.ClaimIds));
                update.Parameters.AddWithValue("@now", Micros(parameters.Now));
                return await update.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ProcessInfo>> ProcessesListAsync(ProcessesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var now = Micros(parameters.Now);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, ProcessesSql.ProcessesList);
        select.Parameters.AddWithValue("@stale_before", StaleBefore(now, parameters.StaleAfter));
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var processes = new List<ProcessInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            var heartbeat = r.GetInt64(7);
            var lease = r.GetInt64(10);
            processes.Add(new ProcessInfo(
                r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetString(4), Time(r, 5),
                r.IsDBNull(6) ? null : r.GetInt64(6), TimeEncoding.FromMicros(heartbeat), Age(now, heartbeat), r.GetString(8), r.GetInt32(9))
            {
                LeaseExpiresAt = TimeEncoding.FromMicros(lease),
                LeaseRemaining = TimeSpan.FromTicks((lease - now) * 10),
                HostId = r.IsDBNull(11) ? null : r.GetString(11),
                PidStartTicks = r.IsDBNull(12) ? null : r.GetInt64(12),
                Liveness = r.GetString(13),
                StoppingAt = NullableTime(r, 14),
            });
        }

        return processes;
    }

    /// <inheritdoc />
    /// <remarks>SQLite has no sessions; same-host processes are checked by pid instead.</remarks>
    public Task<IReadOnlyList<long>> ProcessesSessionEndedAsync(ProcessesSessionParams parameters, CancellationToken cancellationToken)
        => Task.FromResult<IReadOnlyList<long>>([]);
}

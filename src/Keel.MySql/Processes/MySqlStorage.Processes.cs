using System.Globalization;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>
/// Processes: registration, heartbeats (the lease), graceful stops, claims that ignored their cancellation,
/// deregistration, and the list of processes.
/// </summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<long> ProcessRegisterAsync(ProcessRegisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                await using var insert = session.CommandCommitting(ProcessesSql.ProcessRegister);
                insert.Parameters.AddWithValue("@name", parameters.Name);
                insert.Parameters.AddWithValue("@kind", parameters.Kind);
                insert.Parameters.AddWithValue("@pid", parameters.Pid);
                insert.Parameters.AddWithValue("@hostname", parameters.Hostname);
                insert.Parameters.AddWithValue("@started_at", TimeEncoding.ToMicros(parameters.ProcessStartedAt));
                insert.Parameters.AddWithValue("@supervisor_id", (object?)parameters.SupervisorId ?? DBNull.Value);
                insert.Parameters.AddWithValue("@metadata", parameters.Metadata);
                insert.Parameters.AddWithValue("@lease", parameters.LeaseDuration.Ticks / 10);
                insert.Parameters.AddWithValue("@host_id", (object?)parameters.HostId ?? DBNull.Value);
                insert.Parameters.AddWithValue("@pid_start_ticks", (object?)parameters.PidStartTicks ?? DBNull.Value);
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return insert.LastInsertedId;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>One round trip: the lease renewed from the database's clock, the claims read, the commit.</remarks>
    public Task<ProcessHeartbeatResult> ProcessHeartbeatAsync(ProcessHeartbeatParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                await using var update = session.CommandCommitting(parameters.ReturnClaims ? ProcessesSql.ProcessHeartbeatWithClaims : ProcessesSql.ProcessHeartbeat);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                update.Parameters.AddWithValue("@lease", parameters.LeaseDuration.Ticks / 10);
                await using var reader = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (reader.GetInt64(0) != 1)
                {
                    return ProcessHeartbeatResult.Gone;
                }

                if (!parameters.ReturnClaims)
                {
                    return new ProcessHeartbeatResult(true, null);
                }

                var claims = new List<long>();
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
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
            parameters.Now,
            async session =>
            {
                await using var update = session.Command(ProcessesSql.ProcessStopping);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> ProcessDeregisterAsync(ProcessDeregisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                // Releasing and deleting in one transaction: no instant exists where the row is gone but a claim remains.
                var released = await ReleaseClaimsAsync(session, parameters.ProcessId, null, parameters.Reason, parameters.Runner, cancellationToken).ConfigureAwait(false);
                await using var delete = session.Command(ProcessesSql.ProcessDelete);
                delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return released;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> ClaimsMarkUnresponsiveAsync(ClaimsMarkUnresponsiveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.ClaimIds.Count == 0)
        {
            return Task.FromResult(0);
        }

        return WriteAsync(
            parameters.Now,
            async session =>
            {
                await using var update = session.Command(ProcessesSql.ClaimsMarkUnresponsive(parameters.ClaimIds.Distinct()));
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ProcessInfo>> ProcessesListAsync(ProcessesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return ReadAsync<IReadOnlyList<ProcessInfo>>(
            parameters.Now,
            async session =>
            {
                await using var select = session.Command(ProcessesSql.ProcessesList);
                select.Parameters.AddWithValue("@stale_after", parameters.StaleAfter is { } after ? after.Ticks / 10 : DBNull.Value);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                var processes = new List<ProcessInfo>();
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var now = Convert.ToInt64(r.GetValue(15), CultureInfo.InvariantCulture);
                    var heartbeat = r.GetInt64(7);
                    var lease = r.GetInt64(10);
                    processes.Add(new ProcessInfo(
                        r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetString(4), Time(r, 5),
                        r.IsDBNull(6) ? null : r.GetInt64(6), TimeEncoding.FromMicros(heartbeat), Age(now, heartbeat), r.GetString(8), r.GetInt32(9))
                    {
                        LeaseExpiresAt = TimeEncoding.FromMicros(lease),
                        LeaseRemaining = TimeSpan.FromTicks((lease - now) * 10),
                        HostId = NullableString(r, 11),
                        PidStartTicks = r.IsDBNull(12) ? null : r.GetInt64(12),
                        Liveness = r.GetString(13),
                        StoppingAt = NullableTime(r, 14),
                    });
                }

                return processes;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Never any: liveness on MariaDB/MySQL is the lease (and the pid on the same host). A session-level lock
    /// (<c>GET_LOCK</c>) could tell a dead session only as unreliably as PostgreSQL's advisory locks (connections
    /// break, proxies hand sessions around, servers restart and fail over), so this engine does not use one.
    /// </remarks>
    public Task<IReadOnlyList<long>> ProcessesSessionEndedAsync(ProcessesSessionParams parameters, CancellationToken cancellationToken)
        => Task.FromResult<IReadOnlyList<long>>([]);
}

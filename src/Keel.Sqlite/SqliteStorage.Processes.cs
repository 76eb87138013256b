using System.Globalization;
using Keel.Storage;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<long> ProcessRegisterAsync(ProcessRegisterParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var insert = Command(connection, transaction, SqliteStatements.ProcessInsert);
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
                await using (var update = Command(connection, transaction, SqliteStatements.ProcessHeartbeat))
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
                await using var select = Command(connection, transaction, SqliteStatements.ProcessClaims);
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
                await using var update = Command(connection, transaction, SqliteStatements.ProcessStopping);
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
                await using var delete = Command(connection, transaction, SqliteStatements.ProcessDelete);
                delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                await delete.ExecuteNonQueryAsync(cancellationToken);
                return released;
            },
            cancellationToken);
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Recovery: pruning dead processes and recovering their claims in the same transaction (DESIGN §2.3–2.5).</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<RecoveryResult?> ProcessRecoverAsync(ProcessRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Cause);
        ArgumentNullException.ThrowIfNull(parameters.ProcessIds);
        if (parameters.ProcessIds.Count == 0)
        {
            return null;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        // The row locks decide who prunes: a concurrent pruner (or a heartbeat) holding one makes this call skip
        // that row, and a heartbeat that landed before the lock makes the lease re-check fail.
        var locked = new List<long>(parameters.ProcessIds.Count);
        await using (var command = new NpgsqlCommand(ProcessesSql.ProcessRecoverLock, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long[]>("process_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. parameters.ProcessIds] });
            command.Parameters.Add(new NpgsqlParameter<bool>("lease_expired", NpgsqlDbType.Boolean) { TypedValue = parameters.Condition == RecoverCondition.LeaseExpired });
            command.Parameters.Add(Now(parameters.Now));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                locked.Add(reader.GetInt64(0));
            }
        }

        if (locked.Count == 0)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return null;
        }

        int retried;
        int failed;
        int released;
        int cancelled;
        List<PermitRelease>? releases;
        long[]? workflowFailed;
        long[]? workflowCancelled;
        await using (var command = new NpgsqlCommand(ProcessesSql.ProcessRecoverClaims, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long[]>("process_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. locked] });
            command.Parameters.Add(new NpgsqlParameter<bool>("blame", NpgsqlDbType.Boolean) { TypedValue = parameters.Charge == RecoveryCharge.Blame });
            AddCause(command.Parameters, parameters.Cause);
            command.Parameters.Add(Now(parameters.Now));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            retried = checked((int)reader.GetInt64(0));
            failed = checked((int)reader.GetInt64(1));
            released = checked((int)reader.GetInt64(2));
            releases = ReadReleases(reader, 4, 5);
            cancelled = checked((int)reader.GetInt64(6));
            workflowFailed = reader.IsDBNull(7) ? null : reader.GetFieldValue<long[]>(7);
            workflowCancelled = reader.IsDBNull(8) ? null : reader.GetFieldValue<long[]>(8);
        }

        // Jobs in a workflow that recovery failed for good, or discarded as cancelled, advance it in this transaction.
        if (workflowFailed is { Length: > 0 })
        {
            await SettleIdsAsync(connection, transaction, workflowFailed, ContinueWhen.Failed, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        if (workflowCancelled is { Length: > 0 })
        {
            await SettleIdsAsync(connection, transaction, workflowCancelled, ContinueWhen.Discarded, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        // The claims' foreign key is ON DELETE RESTRICT: the rows can only go once they are recovered above.
        await using (var command = new NpgsqlCommand(ProcessesSql.ProcessesDelete, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long[]>("process_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. locked] });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Pruned one of our own (its heartbeat would have found the row gone anyway): release its lock now.
        foreach (var id in locked)
        {
            await DropSessionAsync(id).ConfigureAwait(false);
        }

        // Jobs failed for good gave their permits back (jobs put back to ready keep theirs): promote blocked jobs.
        if (releases is not null)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return new RecoveryResult(retried, failed, released) { Cancelled = cancelled };
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Operator actions: retry, discard, run now, retention and vacuum, claims (listed, released or failed whatever their owner).</summary>
public sealed partial class PostgreSqlStorage
{
    private static readonly JobState[] DefaultDiscardStates = [.. JobStates.Discardable.Select(h => h.State)];

    /// <inheritdoc />
    public async Task<int> JobsRetryAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.BatchSize <= 0 || parameters.JobIds is { Count: 0 })
        {
            return 0;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        int retried;
        long[]? limited;
        long[]? batches;
        await using (var command = new NpgsqlCommand(AdminSql.JobsRetry, connection, transaction))
        {
            AddSelection(command.Parameters, parameters);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            retried = checked((int)reader.GetInt64(0));
            limited = reader.IsDBNull(2) ? null : reader.GetFieldValue<long[]>(2);
            batches = reader.IsDBNull(3) ? null : reader.GetFieldValue<long[]>(3);
        }

        // A retried job of a batch counts as pending there again.
        foreach (var batch in batches ?? [])
        {
            await using var reopen = new NpgsqlCommand(WorkflowsSql.BatchRetried, connection, transaction);
            reopen.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batch });
            await reopen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // Jobs with a concurrency key become ready only with a permit, else blocked (never discarded on a retry).
        if (limited is { Length: > 0 })
        {
            await AcquireAsync(connection, transaction, limited, discard: false, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return retried;
    }

    /// <inheritdoc />
    /// <remarks>
    /// States other than <see cref="JobStates.Discardable"/> ones (ready, scheduled, blocked, failed) in
    /// <see cref="JobsSelectionParams.States"/> are ignored: claimed, finished and discarded jobs are never discarded. The failure filters
    /// (<see cref="JobFilter.ExceptionType"/>, <see cref="JobFilter.FailedAfter"/>, <see cref="JobFilter.FailedBefore"/>)
    /// match failed jobs only. Rows locked by a concurrent claim, dispatch or retry are skipped.
    /// </remarks>
    public async Task<int> JobsDiscardAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.BatchSize <= 0 || parameters.JobIds is { Count: 0 })
        {
            return 0;
        }

        var states = parameters.States ?? DefaultDiscardStates;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(AdminSql.JobsDiscard, connection, transaction);
        AddSelection(command.Parameters, parameters);
        foreach (var home in JobStates.Discardable)
        {
            command.Parameters.Add(new NpgsqlParameter<bool>(home.Key, NpgsqlDbType.Boolean) { TypedValue = states.Contains(home.State) });
        }

        int discarded;
        List<PermitRelease>? releases;
        long[]? workflow;
        long[]? failedBatches;
        long[]? wasFailed;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            discarded = checked((int)reader.GetInt64(0));
            releases = ReadReleases(reader, 1, 2);
            workflow = reader.IsDBNull(3) ? null : reader.GetFieldValue<long[]>(3);
            failedBatches = reader.IsDBNull(4) ? null : reader.GetFieldValue<long[]>(4);
            wasFailed = reader.IsDBNull(5) ? null : reader.GetFieldValue<long[]>(5);
        }

        // A failed job of a batch was counted failed already: the discard moves it to discarded.
        foreach (var batch in failedBatches ?? [])
        {
            await using var reopen = new NpgsqlCommand(WorkflowsSql.BatchRetried, connection, transaction);
            reopen.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batch });
            await reopen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        if (workflow is { Length: > 0 })
        {
            // A failed job settled its children when it failed; only its batch count moves now.
            var failed = new HashSet<long>(wasFailed ?? []);
            var settled = new List<SettledJob>();
            await using (var select = new NpgsqlCommand(WorkflowsSql.JobsFlags, connection, transaction))
            {
                select.Parameters.Add(new NpgsqlParameter<long[]>("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = workflow });
                await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var id = reader.GetInt64(0);
                    settled.Add(new SettledJob(id, ContinueWhen.Discarded, !reader.IsDBNull(1) && !failed.Contains(id), reader.IsDBNull(2) ? null : reader.GetInt64(2)));
                }
            }

            await new PostgreSqlWorkflow(connection, transaction, parameters.Now).SettleAsync(settled, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Only discarded READY jobs held a permit (the statement gave it back): promote the next blocked jobs.
        if (releases is not null)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return discarded;
    }

    /// <inheritdoc />
    public async Task<bool> JobRunNowAsync(JobRunNowParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        bool wasScheduled;
        bool wasBlocked;
        bool limited;
        await using (var command = new NpgsqlCommand(AdminSql.JobRunNow, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.JobId });
            command.Parameters.Add(Now(parameters.Now));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            wasScheduled = reader.GetBoolean(0);
            wasBlocked = reader.GetBoolean(1);
            limited = reader.GetBoolean(2);
        }

        if (!wasScheduled && !wasBlocked)
        {
            await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return false;
        }

        // A scheduled job with a concurrency key is due now, subject to its limit (a blocked one bypassed it above).
        if (wasScheduled && limited)
        {
            await AcquireAsync(connection, transaction, [parameters.JobId], discard: false, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc />
    public async Task<int> JobsClearFinishedAsync(JobsClearFinishedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.BatchSize <= 0)
        {
            return 0;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var batches = new NpgsqlCommand(WorkflowsSql.BatchesClear, connection))
        {
            batches.Parameters.Add(new NpgsqlParameter<TimeSpan>("older_than", NpgsqlDbType.Interval) { TypedValue = parameters.OlderThan });
            batches.Parameters.Add(new NpgsqlParameter<int>("limit", NpgsqlDbType.Integer) { TypedValue = parameters.BatchSize });
            batches.Parameters.Add(Now(parameters.Now));
            await batches.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var command = new NpgsqlCommand(AdminSql.JobsClearFinished, connection);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan>("older_than", NpgsqlDbType.Interval) { TypedValue = parameters.OlderThan });
        command.Parameters.Add(new NpgsqlParameter<int>("batch", NpgsqlDbType.Integer) { TypedValue = parameters.BatchSize });
        command.Parameters.Add(Now(parameters.Now));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Binds a selection: the ids, or (when there are none) the filter; plus the batch size and time.</summary>
    private static void AddSelection(NpgsqlParameterCollection p, JobsSelectionParams parameters)
    {
        var filter = parameters.JobIds is null ? parameters.Filter : null;
        p.Add(new NpgsqlParameter("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint)
        {
            Value = parameters.JobIds is { } ids ? ids.ToArray() : DBNull.Value,
        });
        p.Add(Text("queue", filter?.Queue));
        p.Add(Text("kind", filter?.Kind));
        p.Add(Text("exception_type", filter?.ExceptionType));
        p.Add(Time("failed_after", filter?.FailedAfter));
        p.Add(Time("failed_before", filter?.FailedBefore));
        p.Add(new NpgsqlParameter<int>("batch", NpgsqlDbType.Integer) { TypedValue = parameters.BatchSize });
        p.Add(Now(parameters.Now));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Limit <= 0)
        {
            return [];
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(AdminSql.ClaimsList, connection);
        command.Parameters.Add(new NpgsqlParameter("process_id", NpgsqlDbType.Bigint) { Value = (object?)parameters.ProcessId ?? DBNull.Value });
        command.Parameters.Add(Interval("stale_after", parameters.StaleAfter));
        command.Parameters.Add(new NpgsqlParameter<int>("limit", NpgsqlDbType.Integer) { TypedValue = parameters.Limit });
        command.Parameters.Add(Now(parameters.Now));

        var list = new List<ClaimInfo>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new ClaimInfo(
                reader.GetInt64(0),
                reader.GetInt64(1),
                reader.GetString(2),
                reader.GetString(3),
                reader.GetInt32(4),
                reader.GetFieldValue<DateTimeOffset>(5),
                Age(reader, 6),
                reader.GetInt64(7),
                reader.GetString(8),
                reader.GetString(9),
                reader.GetInt32(10),
                Age(reader, 11))
            {
                LeaseRemaining = reader.GetFieldValue<TimeSpan>(12),
                Progress = reader.IsDBNull(13) ? null : reader.GetDouble(13),
                ProgressMessage = reader.IsDBNull(14) ? null : reader.GetString(14),
                CancelRequested = reader.IsDBNull(15) ? null : reader.GetString(15),
            });
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<RecoveryResult> ClaimsRecoverAsync(ClaimsRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.ClaimIds);
        ArgumentNullException.ThrowIfNull(parameters.Cause);
        if (parameters.ClaimIds.Count == 0)
        {
            return RecoveryResult.None;
        }

        var release = parameters.Action switch
        {
            ClaimAction.Release => true,
            ClaimAction.Fail => false,
            _ => throw new ArgumentOutOfRangeException(nameof(parameters), parameters.Action, "ClaimsRecoverParams.Action must be Release or Fail"),
        };

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            release ? AdminSql.ClaimsRecoverRelease : AdminSql.ClaimsRecoverFail,
            connection,
            transaction);
        command.Parameters.Add(new NpgsqlParameter<long[]>("claim_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. parameters.ClaimIds] });
        command.Parameters.Add(Now(parameters.Now));
        if (release)
        {
            AddRunEnding(command.Parameters, new RunEnding(RunOutcomes.Released, parameters.Cause.Code, parameters.Cause.Description), null);
        }
        else
        {
            AddCause(command.Parameters, parameters.Cause);
        }

        int n;
        List<PermitRelease>? releases = null;
        long[]? workflow = null;
        long[]? workflowCancelled = null;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            var read = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            n = read ? checked((int)reader.GetInt64(0)) : 0;
            if (!release && n > 0)
            {
                releases = ReadReleases(reader, 1, 2);
                workflow = reader.IsDBNull(3) ? null : reader.GetFieldValue<long[]>(3);
            }
            else if (release && read)
            {
                // Claims whose run had been asked to stop were discarded as cancelled, not released.
                releases = ReadReleases(reader, 2, 3);
                workflowCancelled = ReadWorkflowCancelled(reader);
            }
        }

        if (workflow is { Length: > 0 })
        {
            await SettleIdsAsync(connection, transaction, workflow, ContinueWhen.Failed, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        await SettleCancelledAsync(connection, transaction, workflowCancelled, parameters.Now, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Failed jobs gave their permits back (released ones, back to ready, keep theirs): promote blocked jobs.
        if (releases is not null)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return release ? new RecoveryResult(0, 0, Released: n) : new RecoveryResult(0, n);
    }

    /// <summary>
    /// Vacuums a hot table whose dead rows passed the threshold, with <c>SKIP_LOCKED</c> so that hosts running
    /// maintenance at once never queue behind each other. Autovacuum alone comes too late for a queue: it waits for
    /// 20 % of the table to be dead and visits a database at most once a minute, while a busy worker deletes
    /// thousands of ready and claimed rows a second.
    /// </summary>
    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> HotTablesVacuumAsync(long deadRowsThreshold, CancellationToken cancellationToken)
    {
        var due = new List<string>();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand(AdminSql.HotTablesDead, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("threshold", NpgsqlDbType.Bigint) { TypedValue = deadRowsThreshold });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                due.Add(reader.GetString(0));
            }
        }

        foreach (var table in due)
        {
            var sql = table switch
            {
                "keel_ready_executions" => AdminSql.ReadyVacuum,
                "keel_claimed_executions" => AdminSql.ClaimedVacuum,
                _ => throw new InvalidOperationException($"{table} is not a hot table"),
            };
            await using var vacuum = new NpgsqlCommand(sql, connection);
            await vacuum.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return due;
    }
}

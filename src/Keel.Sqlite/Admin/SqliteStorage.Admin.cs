using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Operator actions: retry, discard, run now, retention and vacuum, claims (listed, released or failed whatever their owner).</summary>
public sealed partial class SqliteStorage
{
    private static readonly JobState[] DefaultDiscardStates = [.. JobStates.Discardable.Select(h => h.State)];

    /// <inheritdoc />
    public Task<int> JobsRetryAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var ids = await SelectIdsAsync(connection, transaction, AdminSql.JobsRetryPick, parameters, cancellationToken);
                foreach (var id in ids)
                {
                    await using (var delete = Command(connection, transaction, AdminSql.FailedDelete))
                    {
                        delete.Parameters.AddWithValue("@job_id", id);
                        await delete.ExecuteNonQueryAsync(cancellationToken);
                    }

                    await using (var reset = Command(connection, transaction, AdminSql.JobRetryReset))
                    {
                        reset.Parameters.AddWithValue("@job_id", id);
                        if (await reset.ExecuteScalarAsync(cancellationToken) is string uniqueKey)
                        {
                            await using var take = Command(connection, transaction, JobsSql.UniqueKeyTake);
                            take.Parameters.AddWithValue("@key", uniqueKey);
                            take.Parameters.AddWithValue("@job_id", id);
                            await take.ExecuteNonQueryAsync(cancellationToken);
                        }
                    }

                    var routing = await RoutingAsync(connection, transaction, id, cancellationToken);
                    if (routing.Workflow.BatchId is { } batch)
                    {
                        await ExecuteForBatchAsync(connection, transaction, WorkflowsSql.BatchRetried, batch, cancellationToken);
                    }

                    await MakeDueAsync(connection, transaction, routing, discardOnConflict: false, now, cancellationToken);
                }

                return ids.Count;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> JobsDiscardAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var states = parameters.States ?? DefaultDiscardStates;
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var candidates = new List<(long Id, JobState State)>();
                await using (var select = Command(connection, transaction, AdminSql.JobsDiscardPick))
                {
                    BindSelection(select, parameters);
                    foreach (var home in JobStates.Discardable)
                    {
                        select.Parameters.AddWithValue("@" + home.Key, states.Contains(home.State));
                    }

                    await using var r = await select.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        candidates.Add((r.GetInt64(0), Enum.Parse<JobState>(r.GetString(1))));
                    }
                }

                var settled = new List<SettledJob>();
                foreach (var (id, state) in candidates)
                {
                    var (hasDependents, batch, _) = await FlagsAsync(connection, transaction, id, cancellationToken);
                    if (state == JobState.Failed && batch is not null)
                    {
                        // Counted failed already: the discard moves it to discarded, and the batch's pending stays.
                        await ExecuteForBatchAsync(connection, transaction, WorkflowsSql.BatchRetried, batch.Value, cancellationToken);
                    }

                    if (state != JobState.Failed || batch is not null)
                    {
                        settled.Add(new SettledJob(id, ContinueWhen.Discarded, hasDependents && state != JobState.Failed, batch));
                    }

                    await ExecuteForJobAsync(connection, transaction, AdminSql.ExecutionDelete[state], id, now, cancellationToken);
                    await ExecuteForJobAsync(connection, transaction, JobsSql.JobDiscard, id, now, cancellationToken);
                    await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, id, now, cancellationToken);
                    if (JobStates.Of(state).HoldsPermit)
                    {
                        var routing = await RoutingAsync(connection, transaction, id, cancellationToken);
                        if (routing.Key is not null)
                        {
                            await ReleasePermitAsync(connection, transaction, routing, now, cancellationToken);
                        }
                    }
                }

                await SettleAsync(connection, transaction, settled, now, cancellationToken);
                return candidates.Count;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> JobRunNowAsync(JobRunNowParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                await using (var scheduled = Command(connection, transaction, ScheduledSql.ScheduledDelete))
                {
                    scheduled.Parameters.AddWithValue("@job_id", parameters.JobId);
                    if (await scheduled.ExecuteNonQueryAsync(cancellationToken) == 1)
                    {
                        await MakeDueAsync(connection, transaction, await RoutingAsync(connection, transaction, parameters.JobId, cancellationToken), discardOnConflict: false, now, cancellationToken);
                        return true;
                    }
                }

                string? key;
                await using (var blocked = Command(connection, transaction, ConcurrencySql.BlockedDelete))
                {
                    blocked.Parameters.AddWithValue("@job_id", parameters.JobId);
                    await using var r = await blocked.ExecuteReaderAsync(cancellationToken);
                    if (!await r.ReadAsync(cancellationToken))
                    {
                        return false;
                    }

                    key = r.GetString(0);
                }

                // An operator's override: ready now, whatever the limit; it holds a permit like any ready job.
                await using (var take = Command(connection, transaction, ConcurrencySql.SemaphoreTake))
                {
                    take.Parameters.AddWithValue("@key", key);
                    take.Parameters.AddWithValue("@now", now);
                    await take.ExecuteNonQueryAsync(cancellationToken);
                }

                var routing = await RoutingAsync(connection, transaction, parameters.JobId, cancellationToken);
                await InsertReadyAsync(connection, transaction, routing.JobId, routing.Queue, routing.Priority, now, cancellationToken);
                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> JobsClearFinishedAsync(JobsClearFinishedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var cutoff = Micros(parameters.Now) - (parameters.OlderThan.Ticks / 10);
                await using (var batches = Command(connection, transaction, WorkflowsSql.BatchesClear))
                {
                    batches.Parameters.AddWithValue("@cutoff", cutoff);
                    batches.Parameters.AddWithValue("@limit", parameters.BatchSize);
                    await batches.ExecuteNonQueryAsync(cancellationToken);
                }

                await using var delete = Command(connection, transaction, AdminSql.JobsClearFinished);
                delete.Parameters.AddWithValue("@cutoff", cutoff);
                delete.Parameters.AddWithValue("@limit", parameters.BatchSize);
                return await delete.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }

    private static async Task<List<long>> SelectIdsAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, sql);
        BindSelection(select, parameters);

        var ids = new List<long>();
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            ids.Add(r.GetInt64(0));
        }

        return ids;
    }

    private static void BindSelection(SqliteCommand command, JobsSelectionParams parameters)
    {
        var filter = (parameters.JobIds is null ? parameters.Filter : null) ?? new JobFilter();
        command.Parameters.AddWithValue("@ids", parameters.JobIds is null ? DBNull.Value : JsonArray(parameters.JobIds));
        command.Parameters.AddWithValue("@queue", (object?)filter.Queue ?? DBNull.Value);
        command.Parameters.AddWithValue("@kind", (object?)filter.Kind ?? DBNull.Value);
        command.Parameters.AddWithValue("@exception_type", (object?)filter.ExceptionType ?? DBNull.Value);
        command.Parameters.AddWithValue("@failed_after", filter.FailedAfter is { } a ? TimeEncoding.ToMicros(a) : DBNull.Value);
        command.Parameters.AddWithValue("@failed_before", filter.FailedBefore is { } b ? TimeEncoding.ToMicros(b) : DBNull.Value);
        command.Parameters.AddWithValue("@limit", Math.Max(1, parameters.BatchSize));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var now = Micros(parameters.Now);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, AdminSql.ClaimsList);
        select.Parameters.AddWithValue("@process_id", (object?)parameters.ProcessId ?? DBNull.Value);
        select.Parameters.AddWithValue("@stale_before", StaleBefore(now, parameters.StaleAfter));
        select.Parameters.AddWithValue("@limit", parameters.Limit);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var claims = new List<ClaimInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            var claimedAt = r.GetInt64(5);
            claims.Add(new ClaimInfo(
                r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetInt32(4), TimeEncoding.FromMicros(claimedAt), Age(now, claimedAt),
                r.GetInt64(6), r.GetString(7), r.GetString(8), r.GetInt32(9), Age(now, r.GetInt64(10)))
            {
                LeaseRemaining = TimeSpan.FromTicks((r.GetInt64(11) - now) * 10),
                Progress = r.IsDBNull(12) ? null : r.GetDouble(12),
                ProgressMessage = r.IsDBNull(13) ? null : r.GetString(13),
                CancelRequested = r.IsDBNull(14) ? null : r.GetString(14),
            });
        }

        return claims;
    }

    /// <inheritdoc />
    public async Task<RecoveryResult> ClaimsRecoverAsync(ClaimsRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.ClaimIds.Count == 0)
        {
            return RecoveryResult.None;
        }

        return await WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var claims = new List<(long JobId, long Attempt, long ClaimId, long ClaimedAt, string? Runner)>();
                var cancelled = 0;
                var cancelledReasons = new Dictionary<long, string>();
                await using (var delete = Command(connection, transaction, AdminSql.ClaimsRecoverDelete))
                {
                    delete.Parameters.AddWithValue("@claim_ids", JsonArray(parameters.ClaimIds));
                    await using var r = await delete.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        claims.Add((r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.IsDBNull(4) ? null : r.GetString(4)));
                        if (!r.IsDBNull(5) && parameters.Action == ClaimAction.Release)
                        {
                            cancelledReasons[r.GetInt64(2)] = r.GetString(5);
                        }
                    }
                }

                foreach (var (jobId, attempt, claimId, claimedAt, runner) in claims)
                {
                    if (cancelledReasons.TryGetValue(claimId, out var cancelReason))
                    {
                        // Its run was asked to stop: released, it does not go back but ends cancelled.
                        await ExecuteForJobAsync(connection, transaction, CancelSql.JobDiscardCancelled, jobId, now, cancellationToken);
                        await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Cancelled, RunCauses.CancelHonoured, false, $"{cancelReason} (released: {parameters.Cause.Description})", null), now, cancellationToken);
                        await LeaveCancelledAsync(connection, transaction, jobId, now, cancellationToken);
                        cancelled++;
                    }
                    else if (parameters.Action == ClaimAction.Release)
                    {
                        await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Released, parameters.Cause.Code, false, parameters.Cause.Description, null), now, cancellationToken);
                        await ReadyKeepingSuspectAsync(connection, transaction, jobId, now, cancellationToken);
                    }
                    else
                    {
                        await QueueOfAsync(connection, transaction, AdminSql.JobSetAttempt, jobId, attempt, cancellationToken);
                        var failure = new FailureRecord(WorkerLostCause.ExceptionType, parameters.Cause.Message, null);
                        await InsertErrorAsync(connection, transaction, jobId, attempt, failure, parameters.Cause.Code, now, cancellationToken);
                        await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Failed, parameters.Cause.Code, true, parameters.Cause.Message, null), now, cancellationToken);
                        await InsertFailedAsync(connection, transaction, jobId, attempt, failure, parameters.Cause.Code, now, cancellationToken);
                        await LeaveAsync(connection, transaction, jobId, terminal: true, now, cancellationToken);
                    }
                }

                return parameters.Action == ClaimAction.Release ? new RecoveryResult(0, 0, claims.Count - cancelled) { Cancelled = cancelled } : new RecoveryResult(0, claims.Count);
            },
            cancellationToken);
    }

    private static async Task<(string Queue, long Priority)> QueueOfAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, long jobId, long? attempt, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        command.Parameters.AddWithValue("@job_id", jobId);
        if (attempt is not null)
        {
            command.Parameters.AddWithValue("@attempt", attempt.Value);
        }

        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        return (r.GetString(0), r.GetInt64(1));
    }

    /// <inheritdoc />
    /// <remarks>SQLite reuses a deleted row's space in place: the claim's index walk never steps over dead rows.</remarks>
    public Task<IReadOnlyList<string>> HotTablesVacuumAsync(long deadRowsThreshold, CancellationToken cancellationToken)
        => Task.FromResult<IReadOnlyList<string>>([]);
}

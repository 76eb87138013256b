using System.Globalization;
using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>Operator actions: retry, discard, run now, retention, claims (listed, released or failed whatever their owner).</summary>
public sealed partial class MySqlStorage
{
    private static readonly JobState[] DefaultDiscardStates = [.. JobStates.Discardable.Select(h => h.State)];

    /// <inheritdoc />
    public Task<int> JobsRetryAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                var ids = new List<long>();
                await using (var select = session.Command(AdminSql.JobsRetryPick(SelectedIds(parameters))))
                {
                    BindSelection(select, parameters);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        ids.Add(r.GetInt64(0));
                    }
                }

                var retried = 0;
                foreach (var id in ids)
                {
                    await using (var delete = session.Command(AdminSql.FailedDelete))
                    {
                        delete.Parameters.AddWithValue("@job_id", id);
                        if (await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
                        {
                            continue; // Retried by someone else meanwhile.
                        }
                    }

                    await using (var reset = session.Command(AdminSql.JobRetryReset))
                    {
                        reset.Parameters.AddWithValue("@job_id", id);
                        if (await reset.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string uniqueKey)
                        {
                            await using var take = session.Command(JobsSql.UniqueKeyTake);
                            take.Parameters.AddWithValue("@key", uniqueKey);
                            take.Parameters.AddWithValue("@job_id", id);
                            await take.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                        }
                    }

                    var routing = await RoutingAsync(session, id, cancellationToken).ConfigureAwait(false);
                    if (routing.Workflow.BatchId is { } batch)
                    {
                        await ExecuteForBatchAsync(session, WorkflowsSql.BatchRetried, batch, cancellationToken).ConfigureAwait(false);
                    }

                    await MakeDueAsync(session, routing, discardOnConflict: false, cancellationToken).ConfigureAwait(false);
                    retried++;
                }

                return retried;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> JobsDiscardAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var states = parameters.States ?? DefaultDiscardStates;
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                var candidates = new List<(long Id, JobState State)>();
                await using (var select = session.Command(AdminSql.JobsDiscardPick(SelectedIds(parameters))))
                {
                    BindSelection(select, parameters);
                    foreach (var home in JobStates.Discardable)
                    {
                        select.Parameters.AddWithValue("@" + home.Key, states.Contains(home.State));
                    }

                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        candidates.Add((r.GetInt64(0), Enum.Parse<JobState>(r.GetString(1))));
                    }
                }

                var discarded = 0;
                var settled = new List<SettledJob>();
                foreach (var (id, state) in candidates)
                {
                    await using (var delete = session.Command(AdminSql.ExecutionDelete[state]))
                    {
                        delete.Parameters.AddWithValue("@job_id", id);
                        if (await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
                        {
                            continue; // It left that state meanwhile (claimed, say): not discarded.
                        }
                    }

                    var (hasDependents, batch, _) = await FlagsAsync(session, id, cancellationToken).ConfigureAwait(false);
                    if (state == JobState.Failed && batch is not null)
                    {
                        // Counted failed already: the discard moves it to discarded.
                        await ExecuteForBatchAsync(session, WorkflowsSql.BatchRetried, batch.Value, cancellationToken).ConfigureAwait(false);
                    }

                    if (state != JobState.Failed || batch is not null)
                    {
                        settled.Add(new SettledJob(id, ContinueWhen.Discarded, hasDependents && state != JobState.Failed, batch));
                    }

                    await ExecuteForJobAsync(session, JobsSql.JobDiscard, id, cancellationToken).ConfigureAwait(false);
                    await ExecuteForJobAsync(session, JobsSql.UniqueKeyFree, id, cancellationToken).ConfigureAwait(false);
                    if (JobStates.Of(state).HoldsPermit)
                    {
                        var routing = await RoutingAsync(session, id, cancellationToken).ConfigureAwait(false);
                        if (routing.Key is not null)
                        {
                            await ReleasePermitAsync(session, routing, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    discarded++;
                }

                await SettleAsync(session, settled, cancellationToken).ConfigureAwait(false);
                return discarded;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> JobRunNowAsync(JobRunNowParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                await using (var scheduled = session.Command(ScheduledSql.ScheduledDelete))
                {
                    scheduled.Parameters.AddWithValue("@job_id", parameters.JobId);
                    if (await scheduled.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1)
                    {
                        await MakeDueAsync(session, await RoutingAsync(session, parameters.JobId, cancellationToken).ConfigureAwait(false), discardOnConflict: false, cancellationToken).ConfigureAwait(false);
                        return true;
                    }
                }

                string key;
                await using (var blocked = session.Command(ConcurrencySql.BlockedLock))
                {
                    blocked.Parameters.AddWithValue("@job_id", parameters.JobId);
                    if (await blocked.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not string found)
                    {
                        return false;
                    }

                    key = found;
                }

                await ExecuteForJobAsync(session, ConcurrencySql.BlockedDelete, parameters.JobId, cancellationToken).ConfigureAwait(false);

                // An operator's override: ready now, whatever the limit; it holds a permit like any ready job.
                await using (var take = session.Command(ConcurrencySql.SemaphoreTake))
                {
                    take.Parameters.AddWithValue("@key", key);
                    await take.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                var routing = await RoutingAsync(session, parameters.JobId, cancellationToken).ConfigureAwait(false);
                await InsertReadyAsync(session, routing.JobId, routing.Queue, routing.Priority, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> JobsClearFinishedAsync(JobsClearFinishedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                var cutoff = await session.NowAsync(cancellationToken).ConfigureAwait(false) - (parameters.OlderThan.Ticks / 10);
                await using (var batches = session.Command(WorkflowsSql.BatchesClear))
                {
                    batches.Parameters.AddWithValue("@cutoff", cutoff);
                    batches.Parameters.AddWithValue("@limit", parameters.BatchSize);
                    await batches.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                var ids = new List<long>();
                await using (var select = session.Command(AdminSql.JobsClearFinishedPick))
                {
                    select.Parameters.AddWithValue("@cutoff", cutoff);
                    select.Parameters.AddWithValue("@limit", parameters.BatchSize);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        ids.Add(r.GetInt64(0));
                    }
                }

                if (ids.Count == 0)
                {
                    return 0;
                }

                await using var delete = session.Command(AdminSql.JobsClearFinished(ids));
                delete.Parameters.AddWithValue("@cutoff", cutoff);
                return await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    private static string? SelectedIds(JobsSelectionParams parameters) => parameters.JobIds is null ? null : IdList(parameters.JobIds);

    private static void BindSelection(MySqlCommand command, JobsSelectionParams parameters)
    {
        var filter = (parameters.JobIds is null ? parameters.Filter : null) ?? new JobFilter();
        command.Parameters.AddWithValue("@queue", (object?)filter.Queue ?? DBNull.Value);
        command.Parameters.AddWithValue("@kind", (object?)filter.Kind ?? DBNull.Value);
        command.Parameters.AddWithValue("@exception_type", (object?)filter.ExceptionType ?? DBNull.Value);
        command.Parameters.AddWithValue("@failed_after", Micros(filter.FailedAfter));
        command.Parameters.AddWithValue("@failed_before", Micros(filter.FailedBefore));
        command.Parameters.AddWithValue("@limit", Math.Max(1, parameters.BatchSize));
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return ReadAsync<IReadOnlyList<ClaimInfo>>(
            parameters.Now,
            async session =>
            {
                await using var select = session.Command(AdminSql.ClaimsList);
                select.Parameters.AddWithValue("@process_id", (object?)parameters.ProcessId ?? DBNull.Value);
                select.Parameters.AddWithValue("@stale_after", parameters.StaleAfter is { } after ? after.Ticks / 10 : DBNull.Value);
                select.Parameters.AddWithValue("@limit", parameters.Limit);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                var claims = new List<ClaimInfo>();
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var now = Convert.ToInt64(r.GetValue(12), CultureInfo.InvariantCulture);
                    var claimedAt = r.GetInt64(5);
                    claims.Add(new ClaimInfo(
                        r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetInt32(4), TimeEncoding.FromMicros(claimedAt), Age(now, claimedAt),
                        r.GetInt64(6), r.GetString(7), r.GetString(8), r.GetInt32(9), Age(now, r.GetInt64(10)))
                    {
                        LeaseRemaining = TimeSpan.FromTicks((r.GetInt64(11) - now) * 10),
                        Progress = r.IsDBNull(13) ? null : r.GetDouble(13),
                        ProgressMessage = NullableString(r, 14),
                        CancelRequested = NullableString(r, 15),
                    });
                }

                return claims;
            },
            cancellationToken);
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
            parameters.Now,
            async session =>
            {
                var claims = new List<(long JobId, long Attempt, long ClaimId, long ClaimedAt, string? Runner)>();
                var cancelledReasons = new Dictionary<long, string>();
                var cancelled = 0;
                await using (var delete = session.Command(AdminSql.ClaimsRecoverDelete([.. parameters.ClaimIds.Distinct()])))
                {
                    await using var r = await delete.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    do
                    {
                        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            claims.Add((r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), NullableString(r, 4)));
                            if (NullableString(r, 5) is { } reason && parameters.Action == ClaimAction.Release)
                            {
                                cancelledReasons[r.GetInt64(2)] = reason;
                            }
                        }
                    }
                    while (await r.NextResultAsync(cancellationToken).ConfigureAwait(false));
                }

                foreach (var (jobId, attempt, claimId, claimedAt, runner) in claims)
                {
                    if (cancelledReasons.TryGetValue(claimId, out var cancelReason))
                    {
                        // Its run was asked to stop: released, it does not go back but ends cancelled.
                        await ExecuteForJobAsync(session, CancelSql.JobDiscardCancelled, jobId, cancellationToken).ConfigureAwait(false);
                        await InsertRunAsync(session, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Cancelled, RunCauses.CancelHonoured, false, $"{cancelReason} (released: {parameters.Cause.Description})", null), cancellationToken).ConfigureAwait(false);
                        await LeaveCancelledAsync(session, jobId, cancellationToken).ConfigureAwait(false);
                        cancelled++;
                    }
                    else if (parameters.Action == ClaimAction.Release)
                    {
                        await InsertRunAsync(session, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Released, parameters.Cause.Code, false, parameters.Cause.Description, null), cancellationToken).ConfigureAwait(false);
                        await ReadyKeepingSuspectAsync(session, jobId, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await using (var set = session.Command(AdminSql.JobSetAttempt))
                        {
                            set.Parameters.AddWithValue("@job_id", jobId);
                            set.Parameters.AddWithValue("@attempt", attempt);
                            await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                        }

                        var failure = new FailureRecord(WorkerLostCause.ExceptionType, parameters.Cause.Message, null);
                        await InsertErrorAsync(session, jobId, attempt, failure, parameters.Cause.Code, cancellationToken).ConfigureAwait(false);
                        await InsertRunAsync(session, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Failed, parameters.Cause.Code, true, parameters.Cause.Message, null), cancellationToken).ConfigureAwait(false);
                        await InsertFailedAsync(session, jobId, attempt, failure, parameters.Cause.Code, cancellationToken).ConfigureAwait(false);
                        await LeaveAsync(session, jobId, terminal: true, cancellationToken).ConfigureAwait(false);
                    }
                }

                return parameters.Action == ClaimAction.Release ? new RecoveryResult(0, 0, claims.Count - cancelled) { Cancelled = cancelled } : new RecoveryResult(0, claims.Count);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Nothing to do: InnoDB's purge thread removes the deleted ready and claimed rows in the background (there is no
    /// VACUUM to run).
    /// </remarks>
    public Task<IReadOnlyList<string>> HotTablesVacuumAsync(long deadRowsThreshold, CancellationToken cancellationToken)
        => Task.FromResult<IReadOnlyList<string>>([]);
}

using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Claims, the hot path: claim ready jobs, complete them (alone or with the next claim), fail or retry them, release them.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimedJob>> JobsClaimAsync(JobsClaimParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Limit <= 0)
        {
            return [];
        }

        // An idle worker polls: look first without the write lock, so idle workers never queue for it (nor hold it
        // when their process is frozen mid-poll). A job made ready just after the look is claimed on the next wake-up.
        if (!await AnyReadyAsync(parameters, cancellationToken))
        {
            return [];
        }

        try
        {
            return await WriteAsync((connection, transaction) => ClaimAsync(connection, transaction, parameters, cancellationToken), cancellationToken);
        }
        catch (SqliteException e) when (IsProcessGone(e))
        {
            throw new ProcessGoneException($"process {parameters.ProcessId} is no longer registered; it was pruned, so it may not claim", e);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<long>> JobsCompleteAsync(JobsCompleteParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Claims.Count == 0)
        {
            return [];
        }

        return await WriteAsync((connection, transaction) => CompleteAsync(connection, transaction, parameters, cancellationToken), cancellationToken);
    }

    /// <summary>Both in one <c>BEGIN IMMEDIATE</c> transaction: one commit per batch of jobs instead of two.</summary>
    /// <inheritdoc />
    public async Task<CompleteAndClaimResult> JobsCompleteAndClaimAsync(JobsCompleteParams complete, JobsClaimParams claim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(complete);
        ArgumentNullException.ThrowIfNull(claim);
        if (complete.ProcessId != claim.ProcessId)
        {
            throw new ArgumentException("the completions and the claim must be of the same process", nameof(claim));
        }

        try
        {
            return await WriteAsync(
                async (connection, transaction) =>
                {
                    var completed = await CompleteAsync(connection, transaction, complete, cancellationToken);
                    var claimed = claim.Limit <= 0 ? [] : await ClaimAsync(connection, transaction, claim, cancellationToken);
                    return new CompleteAndClaimResult(completed, claimed);
                },
                cancellationToken);
        }
        catch (SqliteException e) when (IsProcessGone(e))
        {
            throw new ProcessGoneException($"process {claim.ProcessId} is no longer registered; it was pruned, so it may not claim", e);
        }
    }

    /// <summary>SQLITE_CONSTRAINT_FOREIGNKEY on a claim insert: the claiming process's row is gone (it was pruned).</summary>
    private static bool IsProcessGone(SqliteException e) => e.SqliteExtendedErrorCode == 787;

    private async Task<bool> AnyReadyAsync(JobsClaimParams parameters, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = Command(connection, null, ReadyAnySql(parameters));
        command.Parameters.AddWithValue("@queue", parameters.Queue.Value);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) != 0;
    }

    private static string ClaimSql(JobsClaimParams parameters) => (parameters.Queue.Kind, parameters.Suspects) switch
    {
        (QueueMatch.All, false) => ClaimsSql.JobsClaimAll,
        (QueueMatch.Exact, false) => ClaimsSql.JobsClaimExact,
        (_, false) => ClaimsSql.JobsClaimPrefix,
        (QueueMatch.All, true) => ClaimsSql.JobsClaimSuspectAll,
        (QueueMatch.Exact, true) => ClaimsSql.JobsClaimSuspectExact,
        (_, true) => ClaimsSql.JobsClaimSuspectPrefix,
    };

    private static string ReadyAnySql(JobsClaimParams parameters) => (parameters.Queue.Kind, parameters.Suspects) switch
    {
        (QueueMatch.All, false) => ClaimsSql.ReadyAnyAll,
        (QueueMatch.Exact, false) => ClaimsSql.ReadyAnyExact,
        (_, false) => ClaimsSql.ReadyAnyPrefix,
        (QueueMatch.All, true) => ClaimsSql.ReadyAnySuspectAll,
        (QueueMatch.Exact, true) => ClaimsSql.ReadyAnySuspectExact,
        (_, true) => ClaimsSql.ReadyAnySuspectPrefix,
    };

    private async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(SqliteConnection connection, SqliteTransaction transaction, JobsClaimParams parameters, CancellationToken cancellationToken)
    {
        var claimIds = new List<long>(parameters.Limit);
        var jobIds = new List<long>(parameters.Limit);
        await using (var claim = Command(connection, transaction, ClaimSql(parameters)))
        {
            claim.Parameters.AddWithValue("@process_id", parameters.ProcessId);
            claim.Parameters.AddWithValue("@now", Micros(parameters.Now));
            claim.Parameters.AddWithValue("@limit", parameters.Limit);
            claim.Parameters.AddWithValue("@queue", parameters.Queue.Value);
            await using var reader = await claim.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                claimIds.Add(reader.GetInt64(0));
                jobIds.Add(reader.GetInt64(1));
            }
        }

        if (claimIds.Count == 0)
        {
            return (IReadOnlyList<ClaimedJob>)[];
        }

        // The ready rows say when each job became ready: the claim time minus that is its queue latency.
        var readyAt = new Dictionary<long, DateTimeOffset>(jobIds.Count);
        await using (var delete = Command(connection, transaction, ClaimsSql.ReadyDeleteClaimed))
        {
            delete.Parameters.AddWithValue("@job_ids", JsonArray(jobIds));
            await using var deleted = await delete.ExecuteReaderAsync(cancellationToken);
            while (await deleted.ReadAsync(cancellationToken))
            {
                readyAt[deleted.GetInt64(0)] = Time(deleted, 1);
            }
        }

        var claimed = new List<ClaimedJob>(claimIds.Count);
        await using var select = Command(connection, transaction, ClaimsSql.ClaimedJobs);
        select.Parameters.AddWithValue("@claim_ids", JsonArray(claimIds));
        await using var rows = await select.ExecuteReaderAsync(cancellationToken);
        while (await rows.ReadAsync(cancellationToken))
        {
            var jobId = rows.GetInt64(1);
            claimed.Add(new ClaimedJob(
                rows.GetInt64(0), jobId, rows.GetString(2), rows.GetString(3), rows.GetString(4),
                rows.GetInt32(5), rows.GetInt32(6), rows.GetInt32(7), rows.GetInt32(8), Time(rows, 9), Time(rows, 10))
            {
                ReadyAt = readyAt.TryGetValue(jobId, out var ready) ? ready : null,
                TraceParent = rows.IsDBNull(11) ? null : rows.GetString(11),
                Suspect = rows.GetBoolean(12),
                BatchId = rows.IsDBNull(13) ? null : rows.GetInt64(13),
                Checkpoint = rows.IsDBNull(14) ? null : rows.GetString(14),
            });
        }

        return claimed;
    }

    private async Task<IReadOnlyList<long>> CompleteAsync(SqliteConnection connection, SqliteTransaction transaction, JobsCompleteParams parameters, CancellationToken cancellationToken)
    {
        await using var delete = Command(connection, transaction, ClaimsSql.ClaimDelete);
        var claimId = delete.Parameters.Add("@claim_id", SqliteType.Integer);
        var claimJobId = delete.Parameters.Add("@job_id", SqliteType.Integer);
        delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
        await using var finish = Command(connection, transaction, parameters.PreserveFinishedJobs ? ClaimsSql.JobFinish : ClaimsSql.JobDelete);
        var jobId = finish.Parameters.Add("@job_id", SqliteType.Integer);
        var attempt = finish.Parameters.Add("@attempt", SqliteType.Integer);
        var startedAt = parameters.PreserveFinishedJobs ? finish.Parameters.Add("@started_at", SqliteType.Integer) : null;
        if (parameters.PreserveFinishedJobs)
        {
            finish.Parameters.AddWithValue("@runner", (object?)parameters.Runner ?? DBNull.Value);
        }

        finish.Parameters.AddWithValue("@now", Micros(parameters.Now));

        var now = Micros(parameters.Now);
        var accepted = new List<long>(parameters.Claims.Count);
        List<SettledJob>? settled = null;
        foreach (var claim in parameters.Claims)
        {
            claimId.Value = claim.ClaimId;
            claimJobId.Value = claim.JobId;
            long? deletedJob = null;
            long deletedAttempt = 0;
            long claimedAt = 0;
            await using (var reader = await delete.ExecuteReaderAsync(cancellationToken))
            {
                if (await reader.ReadAsync(cancellationToken))
                {
                    deletedJob = reader.GetInt64(0);
                    deletedAttempt = reader.GetInt64(1);
                    claimedAt = reader.GetInt64(2);
                }
            }

            if (deletedJob is null)
            {
                continue; // The claim was recovered by someone else: this late result must change nothing.
            }

            jobId.Value = deletedJob.Value;
            attempt.Value = deletedAttempt;
            startedAt?.Value = claimedAt;
            JobRouting routing;
            bool unique;
            await using (var reader = await finish.ExecuteReaderAsync(cancellationToken))
            {
                await reader.ReadAsync(cancellationToken);
                routing = new JobRouting(
                    deletedJob.Value,
                    reader.GetString(0),
                    reader.GetInt64(1),
                    reader.IsDBNull(2) ? null : reader.GetString(2),
                    reader.IsDBNull(3) ? 1 : reader.GetInt32(3),
                    reader.IsDBNull(4) ? 0 : reader.GetInt64(4) * 1000);
                unique = !reader.IsDBNull(5);
                if (!reader.IsDBNull(6) || !reader.IsDBNull(7))
                {
                    // Only a job in a workflow carries these; a plain job's completion reads two nulls and moves on.
                    (settled ??= []).Add(new SettledJob(deletedJob.Value, ContinueWhen.Succeeded, !reader.IsDBNull(6), reader.IsDBNull(7) ? null : reader.GetInt64(7)));
                }
            }

            // Only jobs with a concurrency or uniqueness key pay for releasing them. The routing came back with the
            // statement, so this works as well when the job row was just deleted (keys deleted with it by cascade).
            if (unique)
            {
                await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, deletedJob.Value, now, cancellationToken);
            }

            if (routing.Key is not null)
            {
                await ReleasePermitAsync(connection, transaction, routing, now, cancellationToken);
            }

            accepted.Add(claim.ClaimId);
        }

        if (settled is not null)
        {
            await SettleAsync(connection, transaction, settled, now, cancellationToken);
        }

        return accepted;
    }

    /// <inheritdoc />
    public async Task<bool> JobFailAsync(JobFailParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                long jobId;
                long attempt;
                long claimedAt;
                string? cancelReason;
                await using (var delete = Command(connection, transaction, CancelSql.ClaimDeleteForFailure))
                {
                    delete.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    delete.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                    delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    await using var reader = await delete.ExecuteReaderAsync(cancellationToken);
                    if (!await reader.ReadAsync(cancellationToken))
                    {
                        return false;
                    }

                    jobId = reader.GetInt64(0);
                    attempt = reader.GetInt64(1);
                    claimedAt = reader.GetInt64(2);
                    cancelReason = reader.IsDBNull(3) ? null : reader.GetString(3);
                }

                if (cancelReason is not null)
                {
                    // Asked to stop, it failed before it saw its token: it ends cancelled, never retried.
                    await InsertErrorAsync(connection, transaction, jobId, attempt, parameters.Failure, cause: null, now, cancellationToken);
                    await ExecuteForJobAsync(connection, transaction, CancelSql.JobDiscardCancelled, jobId, now, cancellationToken);
                    await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, parameters.Claim.ClaimId, parameters.Runner, claimedAt, RunOutcomes.Cancelled, RunCauses.CancelHonoured, false, $"{cancelReason} (its run failed first: {parameters.Failure.ExceptionType}: {parameters.Failure.Message})", null), now, cancellationToken);
                    await LeaveCancelledAsync(connection, transaction, jobId, now, cancellationToken);
                    return true;
                }

                long? retryAt = parameters.RetryAt is { } r ? TimeEncoding.ToMicros(r) : null;
                string queue;
                long priority;
                bool limited;
                await using (var update = Command(connection, transaction, ClaimsSql.JobAttemptUpdate))
                {
                    update.Parameters.AddWithValue("@attempt", attempt);
                    update.Parameters.AddWithValue("@scheduled_at", (object?)retryAt ?? DBNull.Value);
                    update.Parameters.AddWithValue("@job_id", jobId);
                    await using var reader = await update.ExecuteReaderAsync(cancellationToken);
                    await reader.ReadAsync(cancellationToken);
                    queue = reader.GetString(0);
                    priority = reader.GetInt64(1);
                    limited = !reader.IsDBNull(2);
                }

                await InsertErrorAsync(connection, transaction, jobId, attempt, parameters.Failure, cause: null, now, cancellationToken);
                await InsertRunAsync(
                    connection,
                    transaction,
                    new RunRow(jobId, attempt, parameters.Claim.ClaimId, parameters.Runner, claimedAt, RunOutcomes.Failed, retryAt is null ? "failed-for-good" : "retry-scheduled", true, parameters.Failure.ExceptionType + ": " + parameters.Failure.Message, null),
                    now,
                    cancellationToken);
                if (retryAt is null)
                {
                    await InsertFailedAsync(connection, transaction, jobId, attempt, parameters.Failure, cause: null, now, cancellationToken);
                    await LeaveAsync(connection, transaction, jobId, terminal: true, now, cancellationToken);
                }
                else if (limited)
                {
                    // A limited job gives its permit back while it waits; the dispatcher takes one again when it is due.
                    await using (var scheduled = Command(connection, transaction, ScheduledSql.ScheduledInsert))
                    {
                        scheduled.Parameters.AddWithValue("@job_id", jobId);
                        scheduled.Parameters.AddWithValue("@queue", queue);
                        scheduled.Parameters.AddWithValue("@priority", priority);
                        scheduled.Parameters.AddWithValue("@scheduled_at", retryAt.Value);
                        scheduled.Parameters.AddWithValue("@now", now);
                        await scheduled.ExecuteNonQueryAsync(cancellationToken);
                    }

                    await LeaveAsync(connection, transaction, jobId, terminal: false, now, cancellationToken);
                }
                else if (retryAt <= now)
                {
                    await InsertReadyAsync(connection, transaction, jobId, queue, priority, now, cancellationToken);
                }
                else
                {
                    await using var scheduled = Command(connection, transaction, ScheduledSql.ScheduledInsert);
                    scheduled.Parameters.AddWithValue("@job_id", jobId);
                    scheduled.Parameters.AddWithValue("@queue", queue);
                    scheduled.Parameters.AddWithValue("@priority", priority);
                    scheduled.Parameters.AddWithValue("@scheduled_at", retryAt.Value);
                    scheduled.Parameters.AddWithValue("@now", now);
                    await scheduled.ExecuteNonQueryAsync(cancellationToken);
                }

                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> ClaimsReleaseAsync(ClaimsReleaseParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync((c, t) => ReleaseClaimsAsync(c, t, parameters.ProcessId, parameters.ClaimIds, parameters.Reason, parameters.Runner, Micros(parameters.Now), cancellationToken), cancellationToken);
    }

    private static async Task<int> ReleaseClaimsAsync(SqliteConnection connection, SqliteTransaction transaction, long processId, IReadOnlyList<long>? claimIds, RunEnding? reason, string? runner, long now, CancellationToken cancellationToken)
    {
        var jobIds = new List<long>();
        var runs = new List<RunRow>();
        var cancelled = new List<RunRow>();
        await using (var delete = Command(connection, transaction, claimIds is null ? ClaimsSql.ClaimsDeleteAll : ClaimsSql.ClaimsDeleteSome))
        {
            delete.Parameters.AddWithValue("@process_id", processId);
            if (claimIds is not null)
            {
                delete.Parameters.AddWithValue("@claim_ids", JsonArray(claimIds));
            }

            await using var reader = await delete.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (!reader.IsDBNull(4))
                {
                    // Asked to stop before its release: a cancelled job does not go back.
                    cancelled.Add(new RunRow(reader.GetInt64(0), reader.GetInt64(2), reader.GetInt64(1), runner, reader.GetInt64(3), RunOutcomes.Cancelled, RunCauses.CancelHonoured, false, reader.GetString(4) + $" (released: {reason?.Detail ?? "its worker let go of it"})", null));
                    continue;
                }

                jobIds.Add(reader.GetInt64(0));
                if (reason is not null)
                {
                    runs.Add(new RunRow(reader.GetInt64(0), reader.GetInt64(2), reader.GetInt64(1), runner, reader.GetInt64(3), reason.Outcome, reason.Cause, false, reason.Detail, null));
                }
            }
        }

        foreach (var run in runs)
        {
            await InsertRunAsync(connection, transaction, run, now, cancellationToken);
        }

        foreach (var run in cancelled)
        {
            await ExecuteForJobAsync(connection, transaction, CancelSql.JobDiscardCancelled, run.JobId, now, cancellationToken);
            await InsertRunAsync(connection, transaction, run, now, cancellationToken);
            await LeaveCancelledAsync(connection, transaction, run.JobId, now, cancellationToken);
        }

        if (jobIds.Count > 0)
        {
            await using var ready = Command(connection, transaction, ClaimsSql.ReadyInsertReleased);
            ready.Parameters.AddWithValue("@job_ids", JsonArray(jobIds));
            ready.Parameters.AddWithValue("@now", now);
            await ready.ExecuteNonQueryAsync(cancellationToken);
        }

        return jobIds.Count;
    }

    /// <inheritdoc />
    public async Task<bool> ClaimHeldAsync(ClaimHeldParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, ClaimsSql.ClaimHeld);
        select.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
        select.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
        select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
        select.Parameters.AddWithValue("@now", Micros(parameters.Now));
        return Convert.ToInt64(await select.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) != 0;
    }

    private static async Task InsertFailedAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, long attempt, FailureRecord failure, string? cause, long now, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, ClaimsSql.FailedInsert);
        AddFailure(command, jobId, attempt, failure, cause, now);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task ReadyKeepingSuspectAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, long now, CancellationToken cancellationToken)
    {
        await using var ready = Command(connection, transaction, ClaimsSql.ReadyInsertKeepSuspect);
        ready.Parameters.AddWithValue("@job_id", jobId);
        ready.Parameters.AddWithValue("@now", now);
        await ready.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task InsertReadyAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, string queue, long priority, long now, CancellationToken cancellationToken)
    {
        await using var ready = Command(connection, transaction, ClaimsSql.ReadyInsert);
        ready.Parameters.AddWithValue("@job_id", jobId);
        ready.Parameters.AddWithValue("@queue", queue);
        ready.Parameters.AddWithValue("@priority", priority);
        ready.Parameters.AddWithValue("@now", now);
        await ready.ExecuteNonQueryAsync(cancellationToken);
    }
}

using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Recovery: pruning dead processes and recovering their claims in the same transaction (DESIGN §2.3–2.5).</summary>
public sealed partial class SqliteStorage
{
    private const string ClaimsDeleteByIds = """
        DELETE FROM keel_claimed_executions WHERE id IN (SELECT value FROM json_each(@claim_ids))
        RETURNING job_id, attempt, id, claimed_at, (SELECT json_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname) FROM keel_processes p WHERE p.id = process_id)
        """;

    private const string JobSetAttempt = "UPDATE keel_jobs SET attempts = @attempt WHERE id = @job_id RETURNING queue, priority";

    private const string ClaimsSelect = """
        SELECT c.id, c.job_id, j.kind, j.queue, c.attempt, c.claimed_at, p.id, p.name, p.hostname, p.pid, p.last_heartbeat_at,
               p.lease_expires_at
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        JOIN keel_processes p ON p.id = c.process_id
        WHERE (@process_id IS NULL OR c.process_id = @process_id)
          AND (@stale_before IS NULL OR p.last_heartbeat_at < @stale_before)
        ORDER BY c.claimed_at, c.id
        LIMIT @limit
        """;

    /// <inheritdoc />
    public Task<RecoveryResult?> ProcessRecoverAsync(ProcessRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.ProcessIds);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                // BEGIN IMMEDIATE already holds the write lock, so the lease check and the prune cannot interleave
                // with a heartbeat or another pruner.
                var rows = new List<(long Id, string Runner)>();
                var stopping = false;
                foreach (var processId in parameters.ProcessIds.Distinct())
                {
                    await using var check = Command(connection, transaction, ProcessesSql.ProcessRecoverLock);
                    check.Parameters.AddWithValue("@process_id", processId);
                    check.Parameters.AddWithValue("@lease_expired", parameters.Condition == RecoverCondition.LeaseExpired);
                    check.Parameters.AddWithValue("@now", now);
                    await using var r = await check.ExecuteReaderAsync(cancellationToken);
                    if (await r.ReadAsync(cancellationToken))
                    {
                        rows.Add((r.GetInt64(0), r.GetString(2)));
                        stopping |= r.GetBoolean(1);
                    }
                }

                if (rows.Count == 0)
                {
                    return null;
                }

                var lost = new List<LostClaim>();
                foreach (var (id, runner) in rows)
                {
                    await using var delete = Command(connection, transaction, ProcessesSql.ProcessClaimsTake);
                    delete.Parameters.AddWithValue("@process_id", id);
                    await using var r = await delete.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        lost.Add(new LostClaim(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetBoolean(4), runner));
                    }
                }

                var blame = parameters.Charge == RecoveryCharge.Blame && !stopping;
                var result = await RecoverLostAsync(connection, transaction, lost, blame, parameters.Cause, now, cancellationToken);
                foreach (var (id, _) in rows)
                {
                    await using var delete = Command(connection, transaction, ProcessesSql.ProcessDelete);
                    delete.Parameters.AddWithValue("@process_id", id);
                    await delete.ExecuteNonQueryAsync(cancellationToken);
                }

                return (RecoveryResult?)result;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var now = Micros(parameters.Now);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, ClaimsSelect);
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
                await using (var delete = Command(connection, transaction, ClaimsDeleteByIds))
                {
                    delete.Parameters.AddWithValue("@claim_ids", JsonArray(parameters.ClaimIds));
                    await using var r = await delete.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        claims.Add((r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.IsDBNull(4) ? null : r.GetString(4)));
                    }
                }

                foreach (var (jobId, attempt, claimId, claimedAt, runner) in claims)
                {
                    if (parameters.Action == ClaimAction.Release)
                    {
                        await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Released, parameters.Cause.Code, false, parameters.Cause.Description, null), now, cancellationToken);
                        await ReadyKeepingSuspectAsync(connection, transaction, jobId, now, cancellationToken);
                    }
                    else
                    {
                        await QueueOfAsync(connection, transaction, JobSetAttempt, jobId, attempt, cancellationToken);
                        var failure = new FailureRecord(WorkerLostCause.ExceptionType, parameters.Cause.Message, null);
                        await InsertErrorAsync(connection, transaction, jobId, attempt, failure, parameters.Cause.Code, now, cancellationToken);
                        await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, claimId, runner, claimedAt, RunOutcomes.Failed, parameters.Cause.Code, true, parameters.Cause.Message, null), now, cancellationToken);
                        await InsertFailedAsync(connection, transaction, jobId, attempt, failure, parameters.Cause.Code, now, cancellationToken);
                        await LeaveAsync(connection, transaction, jobId, terminal: true, now, cancellationToken);
                    }
                }

                return parameters.Action == ClaimAction.Release ? new RecoveryResult(0, 0, claims.Count) : new RecoveryResult(0, claims.Count);
            },
            cancellationToken);
    }

    /// <summary>A claim a prune took back, with what blame needs.</summary>
    private sealed record LostClaim(long JobId, long Attempt, long ClaimId, long ClaimedAt, bool Unresponsive, string Runner);

    /// <summary>
    /// Decides who is charged (DESIGN §2.5) and applies it: with <paramref name="blame"/>, a claim marked unresponsive is
    /// charged alone; otherwise the only claim of the dying process is; claims that shared it are charged nothing and
    /// their jobs become suspects. A charged job counts the attempt and a loss and goes back to ready, or fails once its
    /// losses or attempts are spent; an uncharged one goes back to ready as it was. Every run goes into the history.
    /// </summary>
    private static async Task<RecoveryResult> RecoverLostAsync(SqliteConnection connection, SqliteTransaction transaction, List<LostClaim> lost, bool blame, WorkerLostCause cause, long now, CancellationToken cancellationToken)
    {
        var retried = 0;
        var failed = 0;
        var released = 0;
        var stuck = lost.Count(c => c.Unresponsive);
        var failure = new FailureRecord(WorkerLostCause.ExceptionType, cause.Message, null);
        foreach (var claim in lost)
        {
            var charged = blame && (stuck > 0 ? claim.Unresponsive : lost.Count == 1);
            var suspected = blame && stuck == 0 && lost.Count > 1;
            var sharedWith = lost.Count > 1 ? string.Join(',', lost.Where(o => o.JobId != claim.JobId).Select(o => o.JobId.ToString(System.Globalization.CultureInfo.InvariantCulture))) : null;
            await InsertRunAsync(connection, transaction, new RunRow(claim.JobId, claim.Attempt, claim.ClaimId, claim.Runner, claim.ClaimedAt, RunOutcomes.Lost, cause.Code, charged, cause.Message, sharedWith), now, cancellationToken);
            if (!charged)
            {
                if (suspected)
                {
                    await using var mark = Command(connection, transaction, ProcessesSql.JobMarkSuspect);
                    mark.Parameters.AddWithValue("@job_id", claim.JobId);
                    await mark.ExecuteNonQueryAsync(cancellationToken);
                }

                await ReadyKeepingSuspectAsync(connection, transaction, claim.JobId, now, cancellationToken);
                released++;
                continue;
            }

            string queue;
            long priority;
            bool giveUp;
            await using (var mark = Command(connection, transaction, ProcessesSql.JobMarkLost))
            {
                mark.Parameters.AddWithValue("@attempt", claim.Attempt);
                mark.Parameters.AddWithValue("@job_id", claim.JobId);
                await using var r = await mark.ExecuteReaderAsync(cancellationToken);
                await r.ReadAsync(cancellationToken);
                (queue, priority, giveUp) = (r.GetString(0), r.GetInt64(1), r.GetBoolean(2));
            }

            await InsertErrorAsync(connection, transaction, claim.JobId, claim.Attempt, failure, cause.Code, now, cancellationToken);
            if (giveUp)
            {
                await InsertFailedAsync(connection, transaction, claim.JobId, claim.Attempt, failure, cause.Code, now, cancellationToken);
                await LeaveAsync(connection, transaction, claim.JobId, terminal: true, now, cancellationToken);
                failed++;
            }
            else
            {
                await ReadyKeepingSuspectAsync(connection, transaction, claim.JobId, now, cancellationToken);
                retried++;
            }
        }

        return new RecoveryResult(retried, failed, released);
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
}

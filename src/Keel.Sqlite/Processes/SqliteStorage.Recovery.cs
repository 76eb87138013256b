using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Recovery: pruning dead processes and recovering their claims in the same transaction (DESIGN §2.3–2.5).</summary>
public sealed partial class SqliteStorage
{
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
                        lost.Add(new LostClaim(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetBoolean(4), runner) { CancelReason = r.IsDBNull(5) ? null : r.GetString(5) });
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

    /// <summary>A claim a prune took back, with what blame needs.</summary>
    private sealed record LostClaim(long JobId, long Attempt, long ClaimId, long ClaimedAt, bool Unresponsive, string Runner)
    {
        /// <summary>Set when the run had been asked to stop: the job is discarded, not recovered.</summary>
        public string? CancelReason { get; init; }
    }

    /// <summary>
    /// Decides who is charged (DESIGN §2.5) and applies it: with <paramref name="blame"/>, a claim marked unresponsive is
    /// charged alone; otherwise the only claim of the dying process is; claims that shared it are charged nothing and
    /// count a shared loss (their second makes them suspects). A charged job counts the attempt and a loss and goes back to ready, or fails once its
    /// losses or attempts are spent; an uncharged one goes back to ready as it was. Every run goes into the history.
    /// </summary>
    private static async Task<RecoveryResult> RecoverLostAsync(SqliteConnection connection, SqliteTransaction transaction, List<LostClaim> lost, bool blame, WorkerLostCause cause, long now, CancellationToken cancellationToken)
    {
        var retried = 0;
        var failed = 0;
        var released = 0;
        var stuck = lost.Count(c => c.Unresponsive);
        var failure = new FailureRecord(WorkerLostCause.ExceptionType, cause.Message, null);
        var cancelled = 0;
        foreach (var claim in lost)
        {
            if (claim.CancelReason is { } cancelReason)
            {
                // Its run was asked to stop: the process ending is the stop, and a cancelled job is never retried.
                await ExecuteForJobAsync(connection, transaction, CancelSql.JobDiscardCancelled, claim.JobId, now, cancellationToken);
                await InsertRunAsync(connection, transaction, new RunRow(claim.JobId, claim.Attempt, claim.ClaimId, claim.Runner, claim.ClaimedAt, RunOutcomes.Cancelled, RunCauses.CancelledWithProcess, false, $"{cancelReason} (its run ended with its process: {cause.Message})", null), now, cancellationToken);
                await LeaveCancelledAsync(connection, transaction, claim.JobId, now, cancellationToken);
                cancelled++;
                continue;
            }

            var charged = blame && (stuck > 0 ? claim.Unresponsive : lost.Count == 1);
            var suspected = blame && stuck == 0 && lost.Count > 1;
            var sharedWith = lost.Count > 1 ? string.Join(',', lost.Where(o => o.JobId != claim.JobId).Select(o => o.JobId.ToString(System.Globalization.CultureInfo.InvariantCulture))) : null;
            await InsertRunAsync(connection, transaction, new RunRow(claim.JobId, claim.Attempt, claim.ClaimId, claim.Runner, claim.ClaimedAt, RunOutcomes.Lost, cause.Code, charged, cause.Message, sharedWith), now, cancellationToken);
            if (!charged)
            {
                if (suspected)
                {
                    await using var mark = Command(connection, transaction, ProcessesSql.JobMarkSharedLoss);
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

        return new RecoveryResult(retried, failed, released) { Cancelled = cancelled };
    }
}

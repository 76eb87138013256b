using System.Globalization;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>Recovery: pruning dead processes and recovering their claims in the same transaction (DESIGN §2.3–2.5).</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<RecoveryResult?> ProcessRecoverAsync(ProcessRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Cause);
        ArgumentNullException.ThrowIfNull(parameters.ProcessIds);
        if (parameters.ProcessIds.Count == 0)
        {
            return Task.FromResult<RecoveryResult?>(null);
        }

        return WriteAsync(
            parameters.Now,
            async session =>
            {
                // The row locks decide who prunes: a concurrent pruner (or a heartbeat) holding one makes this call skip
                // that row, and a heartbeat that committed before the lock makes the lease re-check fail.
                var rows = new Dictionary<long, string>();
                var stopping = false;
                await using (var check = session.Command(ProcessesSql.ProcessRecoverLock(IdList(parameters.ProcessIds.Distinct()))))
                {
                    check.Parameters.AddWithValue("@lease_expired", parameters.Condition == RecoverCondition.LeaseExpired);
                    await using var r = await check.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        rows[r.GetInt64(0)] = r.GetString(2);
                        stopping |= Flag(r, 1);
                    }
                }

                if (rows.Count == 0)
                {
                    return null;
                }

                var locked = rows.Keys.Order().ToList();
                var lost = new List<LostClaim>();
                await using (var take = session.Command(ProcessesSql.ProcessRecoverClaims(locked)))
                {
                    await using var r = await take.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    do
                    {
                        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            lost.Add(new LostClaim(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), Flag(r, 4), rows[r.GetInt64(5)]) { CancelReason = r.IsDBNull(6) ? null : r.GetString(6) });
                        }
                    }
                    while (await r.NextResultAsync(cancellationToken).ConfigureAwait(false));
                }

                var blame = parameters.Charge == RecoveryCharge.Blame && !stopping;
                var result = await RecoverLostAsync(session, lost, blame, parameters.Cause, cancellationToken).ConfigureAwait(false);

                // The claims' foreign key is ON DELETE RESTRICT: the rows can only go once they are recovered above.
                await session.ExecuteAsync(ProcessesSql.ProcessesDelete(locked), cancellationToken).ConfigureAwait(false);
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
    /// count a shared loss (their second makes them suspects). A charged job counts the attempt and a loss and goes back
    /// to ready, or fails once its losses or attempts are spent; an uncharged one goes back to ready as it was. Every run
    /// goes into the history.
    /// </summary>
    private static async Task<RecoveryResult> RecoverLostAsync(Session session, List<LostClaim> lost, bool blame, WorkerLostCause cause, CancellationToken cancellationToken)
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
                await ExecuteForJobAsync(session, CancelSql.JobDiscardCancelled, claim.JobId, cancellationToken).ConfigureAwait(false);
                await InsertRunAsync(session, new RunRow(claim.JobId, claim.Attempt, claim.ClaimId, claim.Runner, claim.ClaimedAt, RunOutcomes.Cancelled, RunCauses.CancelledWithProcess, false, $"{cancelReason} (its run ended with its process: {cause.Message})", null), cancellationToken).ConfigureAwait(false);
                await LeaveCancelledAsync(session, claim.JobId, cancellationToken).ConfigureAwait(false);
                cancelled++;
                continue;
            }

            var charged = blame && (stuck > 0 ? claim.Unresponsive : lost.Count == 1);
            var suspected = blame && stuck == 0 && lost.Count > 1;
            var sharedWith = lost.Count > 1 ? string.Join(',', lost.Where(o => o.JobId != claim.JobId).Select(o => o.JobId.ToString(CultureInfo.InvariantCulture))) : null;
            await InsertRunAsync(session, new RunRow(claim.JobId, claim.Attempt, claim.ClaimId, claim.Runner, claim.ClaimedAt, RunOutcomes.Lost, cause.Code, charged, cause.Message, sharedWith), cancellationToken).ConfigureAwait(false);
            if (!charged)
            {
                if (suspected)
                {
                    await ExecuteForJobAsync(session, ProcessesSql.JobMarkSharedLoss, claim.JobId, cancellationToken).ConfigureAwait(false);
                }

                await ReadyKeepingSuspectAsync(session, claim.JobId, cancellationToken).ConfigureAwait(false);
                released++;
                continue;
            }

            bool giveUp;
            await using (var mark = session.Command(ProcessesSql.JobMarkLost + ";\n" + ProcessesSql.JobGivesUp))
            {
                mark.Parameters.AddWithValue("@attempt", claim.Attempt);
                mark.Parameters.AddWithValue("@job_id", claim.JobId);
                giveUp = Convert.ToInt64(await mark.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture) != 0;
            }

            await InsertErrorAsync(session, claim.JobId, claim.Attempt, failure, cause.Code, cancellationToken).ConfigureAwait(false);
            if (giveUp)
            {
                await InsertFailedAsync(session, claim.JobId, claim.Attempt, failure, cause.Code, cancellationToken).ConfigureAwait(false);
                await LeaveAsync(session, claim.JobId, terminal: true, cancellationToken).ConfigureAwait(false);
                failed++;
            }
            else
            {
                await ReadyKeepingSuspectAsync(session, claim.JobId, cancellationToken).ConfigureAwait(false);
                retried++;
            }
        }

        return new RecoveryResult(retried, failed, released) { Cancelled = cancelled };
    }
}

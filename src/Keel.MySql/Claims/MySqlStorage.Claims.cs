using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>Claims, the hot path: claim ready jobs, complete them (alone or with the next claim), fail or retry them, release them.</summary>
public sealed partial class MySqlStorage
{
    /// <summary>MariaDB's and MySQL's error for an insert whose foreign key finds no parent row: the claiming process was pruned.</summary>
    private const int NoReferencedRow = 1452;

    /// <inheritdoc />
    /// <remarks>Two round trips: the pick (locks ready rows, skipping locked ones), then the take and the commit.</remarks>
    public async Task<IReadOnlyList<ClaimedJob>> JobsClaimAsync(JobsClaimParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Limit <= 0)
        {
            return [];
        }

        try
        {
            return await WriteAsync(parameters.Now, session => ClaimAsync(session, parameters, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException e) when (e.Number == NoReferencedRow)
        {
            throw new ProcessGoneException($"process {parameters.ProcessId} is no longer registered; it was pruned, so it may not claim", e);
        }
    }

    /// <inheritdoc />
    /// <remarks>One round trip (locking read, writes, permits given back and commit in one batch); blocked jobs are promoted into the permits after commit.</remarks>
    public async Task<IReadOnlyList<long>> JobsCompleteAsync(JobsCompleteParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Claims.Count == 0)
        {
            return [];
        }

        var held = await WriteAsync(parameters.Now, session => CompleteAsync(session, parameters, commit: true, cancellationToken), cancellationToken).ConfigureAwait(false);
        held = await CompleteWorkflowJobsAsync(held, parameters, cancellationToken).ConfigureAwait(false);
        await PromoteAfterCommitAsync(held, parameters.Now, cancellationToken).ConfigureAwait(false);
        return [.. held.Select(h => h.ClaimId)];
    }

    /// <summary>
    /// Both in one transaction and two round trips: the completions with the next pick, then the take with the commit —
    /// one commit per batch of jobs instead of two. A pruned process's claim insert fails and nothing is written.
    /// </summary>
    /// <inheritdoc />
    public async Task<CompleteAndClaimResult> JobsCompleteAndClaimAsync(JobsCompleteParams complete, JobsClaimParams claim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(complete);
        ArgumentNullException.ThrowIfNull(claim);
        if (complete.ProcessId != claim.ProcessId)
        {
            throw new ArgumentException("the completions and the claim must be of the same process", nameof(claim));
        }

        if (claim.Limit <= 0)
        {
            return new CompleteAndClaimResult(await JobsCompleteAsync(complete, cancellationToken).ConfigureAwait(false), []);
        }

        List<HeldClaim> held;
        IReadOnlyList<ClaimedJob> claimed;
        try
        {
            (held, claimed) = await WriteAsync(
                complete.Now,
                async session =>
                {
                    var done = complete.Claims.Count == 0 ? [] : await CompleteAsync(session, complete, commit: false, cancellationToken).ConfigureAwait(false);
                    var jobs = await ClaimAsync(session, claim, cancellationToken).ConfigureAwait(false);
                    return (done, jobs);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (MySqlException e) when (e.Number == NoReferencedRow)
        {
            throw new ProcessGoneException($"process {claim.ProcessId} is no longer registered; it was pruned, so it may not claim", e);
        }

        held = await CompleteWorkflowJobsAsync(held, complete, cancellationToken).ConfigureAwait(false);
        await PromoteAfterCommitAsync(held, complete.Now, cancellationToken).ConfigureAwait(false);
        return new CompleteAndClaimResult([.. held.Select(h => h.ClaimId)], claimed);
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

    /// <summary>Picks and locks ready jobs, then takes them and commits (the session's transaction ends here).</summary>
    private static async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(Session session, JobsClaimParams parameters, CancellationToken cancellationToken)
    {
        var readyAt = new Dictionary<long, DateTimeOffset>(parameters.Limit);
        await using (var pick = session.Command(ClaimSql(parameters)))
        {
            pick.Parameters.AddWithValue("@limit", parameters.Limit);
            pick.Parameters.AddWithValue("@queue", parameters.Queue.Value);
            await using var reader = await pick.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                readyAt[reader.GetInt64(0)] = Time(reader, 1);
            }
        }

        if (readyAt.Count == 0)
        {
            return [];
        }

        var claimed = new List<ClaimedJob>(readyAt.Count);
        await using var take = session.CommandCommitting(ClaimsSql.JobsClaimTake([.. readyAt.Keys.Order()]));
        take.Parameters.AddWithValue("@process_id", parameters.ProcessId);
        await using var rows = await take.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await rows.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var jobId = rows.GetInt64(1);
            claimed.Add(new ClaimedJob(
                rows.GetInt64(0), jobId, rows.GetString(2), rows.GetString(3), rows.GetString(4),
                rows.GetInt32(5), rows.GetInt32(6), rows.GetInt32(7), rows.GetInt32(8), Time(rows, 9), Time(rows, 10))
            {
                ReadyAt = readyAt.TryGetValue(jobId, out var ready) ? ready : null,
                TraceParent = NullableString(rows, 11),
                Suspect = Flag(rows, 12),
                BatchId = rows.IsDBNull(13) ? null : rows.GetInt64(13),
                Checkpoint = NullableString(rows, 14),
            });
        }

        return claimed;
    }

    /// <summary>A claim a completion found held: what giving back its job's permit needs.</summary>
    /// <summary>A claim found held by a completion; <see cref="Workflow"/> is set for a job in a workflow, which the hot path leaves held.</summary>
    private sealed record HeldClaim(long ClaimId, JobRouting Routing, SettledJob? Workflow = null);

    /// <summary>
    /// Completes the claims the hot path left held because their jobs take part in a workflow, in a transaction of
    /// their own that also advances the workflows (re-fenced: a claim recovered meanwhile is rejected). Returns the
    /// claims completed by either.
    /// </summary>
    private async Task<List<HeldClaim>> CompleteWorkflowJobsAsync(List<HeldClaim> held, JobsCompleteParams parameters, CancellationToken cancellationToken)
    {
        if (!held.Exists(h => h.Workflow is not null))
        {
            return held;
        }

        var workflow = held.Where(h => h.Workflow is not null).ToList();
        var done = await WriteAsync(
            parameters.Now,
            async session =>
            {
                var completed = await CompleteAsync(session, parameters with { Claims = [.. parameters.Claims.Where(c => workflow.Exists(w => w.ClaimId == c.ClaimId))] }, commit: false, cancellationToken, plainOnly: false).ConfigureAwait(false);
                await SettleAsync(session, [.. completed.Select(c => c.Workflow!.Value with { Outcome = ContinueWhen.Succeeded })], cancellationToken).ConfigureAwait(false);
                return completed;
            },
            cancellationToken).ConfigureAwait(false);
        return [.. held.Where(h => h.Workflow is null), .. done];
    }

    /// <summary>Completes the held claims in one batch; with <paramref name="commit"/>, the batch commits too.</summary>
    private static async Task<List<HeldClaim>> CompleteAsync(Session session, JobsCompleteParams parameters, bool commit, CancellationToken cancellationToken, bool plainOnly = true)
    {
        var claims = parameters.Claims.DistinctBy(c => c.ClaimId).ToList();
        var sql = parameters.PreserveFinishedJobs ? ClaimsSql.JobsCompletePreserve(claims, plainOnly) : ClaimsSql.JobsCompleteDelete(claims, plainOnly);
        await using var command = commit ? session.CommandCommitting(sql) : session.Command(sql);
        command.Parameters.AddWithValue("@process_id", parameters.ProcessId);
        command.Parameters.AddWithValue("@runner", (object?)parameters.Runner ?? DBNull.Value);
        var held = new List<HeldClaim>(parameters.Claims.Count);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        do
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var jobId = reader.GetInt64(1);
                SettledJob? workflow = reader.IsDBNull(7) && reader.IsDBNull(8) ? null : new SettledJob(jobId, ContinueWhen.Succeeded, !reader.IsDBNull(7), reader.IsDBNull(8) ? null : reader.GetInt64(8));
                held.Add(new HeldClaim(reader.GetInt64(0), ReadRouting(reader, jobId, keyOrdinal: 2, queueOrdinal: 5), workflow));
            }
        }
        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));

        return held;
    }

    /// <summary>
    /// Promotes blocked jobs into the permits the committed completion gave back. The job's new state and its permit
    /// are already durable, so a failure here must not surface as a failure of the completion (a retry would find the
    /// claims gone): maintenance promotes into a key's free permits at its next pass.
    /// </summary>
    private async Task PromoteAfterCommitAsync(List<HeldClaim> held, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        var limited = held.Where(h => h.Routing.Key is not null).Select(h => h.Routing).DistinctBy(r => r.Key).OrderBy(r => r.Key, StringComparer.Ordinal).ToList();
        if (limited.Count == 0)
        {
            return;
        }

        try
        {
            await WriteAsync(
                now,
                async session =>
                {
                    foreach (var routing in limited)
                    {
                        await PromoteIntoFreePermitsAsync(session, routing, cancellationToken).ConfigureAwait(false);
                    }

                    return 0;
                },
                cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Deliberately swallowed: see the summary; maintenance repairs a lost promotion.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <inheritdoc />
    public async Task<bool> JobFailAsync(JobFailParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await WriteAsync(
            parameters.Now,
            async session =>
            {
                long jobId;
                long attempt;
                long claimedAt;
                bool limited;
                string? cancelReason;
                await using (var select = session.Command(ClaimsSql.ClaimLock))
                {
                    select.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    select.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                    select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return false; // The claim was recovered by someone else: this late result must change nothing.
                    }

                    jobId = reader.GetInt64(0);
                    attempt = reader.GetInt64(1);
                    claimedAt = reader.GetInt64(2);
                    limited = Flag(reader, 5);
                    cancelReason = NullableString(reader, 6);
                }

                if (cancelReason is not null)
                {
                    // Asked to stop, it failed before it saw its token: it ends cancelled, never retried.
                    await InsertErrorAsync(session, jobId, attempt, parameters.Failure, null, cancellationToken).ConfigureAwait(false);
                    await using (var finish = session.Command(CancelSql.JobCancelFinish))
                    {
                        finish.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                        finish.Parameters.AddWithValue("@job_id", jobId);
                        await finish.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await InsertRunAsync(session, new RunRow(jobId, attempt, parameters.Claim.ClaimId, parameters.Runner, claimedAt, RunOutcomes.Cancelled, RunCauses.CancelHonoured, false, $"{cancelReason} (its run failed first: {parameters.Failure.ExceptionType}: {parameters.Failure.Message})", null), cancellationToken).ConfigureAwait(false);
                    await LeaveCancelledAsync(session, jobId, cancellationToken).ConfigureAwait(false);
                    return true;
                }

                // A failure for good may advance a workflow afterwards in the same transaction: no commit in this batch then.
                await using (var fail = limited || parameters.RetryAt is null ? session.Command(ClaimsSql.JobFail) : session.CommandCommitting(ClaimsSql.JobFail))
                {
                    var p = fail.Parameters;
                    p.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    p.AddWithValue("@job_id", jobId);
                    p.AddWithValue("@attempt", attempt);
                    p.AddWithValue("@claimed_at", claimedAt);
                    p.AddWithValue("@retry_at", Micros(parameters.RetryAt));
                    p.AddWithValue("@exception_type", parameters.Failure.ExceptionType);
                    p.AddWithValue("@message", parameters.Failure.Message);
                    p.AddWithValue("@stack_trace", (object?)parameters.Failure.StackTrace ?? DBNull.Value);
                    p.AddWithValue("@runner", (object?)parameters.Runner ?? DBNull.Value);
                    await fail.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                if (limited)
                {
                    // Failed for good or waiting for a retry, a limited job gives its permit back; the dispatcher takes
                    // one again when the retry is due.
                    await ReleasePermitAsync(session, await RoutingAsync(session, jobId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                }

                if (parameters.RetryAt is null)
                {
                    var (hasDependents, batch, _) = await FlagsAsync(session, jobId, cancellationToken).ConfigureAwait(false);
                    if (hasDependents || batch is not null)
                    {
                        await SettleAsync(session, [new SettledJob(jobId, ContinueWhen.Failed, hasDependents, batch)], cancellationToken).ConfigureAwait(false);
                    }
                }

                return true;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<int> ClaimsReleaseAsync(ClaimsReleaseParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(parameters.Now, session => ReleaseClaimsAsync(session, parameters.ProcessId, parameters.ClaimIds, parameters.Reason, parameters.Runner, cancellationToken), cancellationToken);
    }

    /// <summary>Puts claims of a process back to ready (uncharged), recording <paramref name="reason"/> in each job's history.</summary>
    private static async Task<int> ReleaseClaimsAsync(Session session, long processId, IReadOnlyList<long>? claimIds, RunEnding? reason, string? runner, CancellationToken cancellationToken)
    {
        if (claimIds is { Count: 0 })
        {
            return 0;
        }

        var released = new List<(long JobId, long ClaimId, long Attempt, long ClaimedAt)>();
        var cancelled = new List<(long JobId, long ClaimId, long Attempt, long ClaimedAt, string Reason)>();
        await using (var select = session.Command(claimIds is null ? ClaimsSql.ClaimsReleaseAll : ClaimsSql.ClaimsReleaseSome(claimIds.Distinct())))
        {
            select.Parameters.AddWithValue("@process_id", processId);
            await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            do
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (!reader.IsDBNull(4))
                    {
                        // Asked to stop before its release: a cancelled job does not go back.
                        cancelled.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetString(4)));
                        continue;
                    }

                    released.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3)));
                }
            }
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
        }

        foreach (var run in cancelled)
        {
            await using (var finish = session.Command(CancelSql.JobCancelFinish))
            {
                finish.Parameters.AddWithValue("@claim_id", run.ClaimId);
                finish.Parameters.AddWithValue("@job_id", run.JobId);
                await finish.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await InsertRunAsync(session, new RunRow(run.JobId, run.Attempt, run.ClaimId, runner, run.ClaimedAt, RunOutcomes.Cancelled, RunCauses.CancelHonoured, false, run.Reason + $" (released: {reason?.Detail ?? "its worker let go of it"})", null), cancellationToken).ConfigureAwait(false);
            await LeaveCancelledAsync(session, run.JobId, cancellationToken).ConfigureAwait(false);
        }

        if (released.Count == 0)
        {
            return 0;
        }

        if (reason is not null)
        {
            foreach (var run in released)
            {
                await InsertRunAsync(session, new RunRow(run.JobId, run.Attempt, run.ClaimId, runner, run.ClaimedAt, reason.Outcome, reason.Cause, false, reason.Detail, null), cancellationToken).ConfigureAwait(false);
            }
        }

        await session.ExecuteAsync(ClaimsSql.ReleaseTail(released.Select(r => r.ClaimId), released.Select(r => r.JobId)), cancellationToken).ConfigureAwait(false);
        return released.Count;
    }

    /// <inheritdoc />
    public async Task<bool> ClaimHeldAsync(ClaimHeldParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await ReadAsync(
            parameters.Now,
            async session =>
            {
                await using var select = session.Command(ClaimsSql.ClaimHeld);
                select.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                select.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                return Convert.ToInt64(await select.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) != 0;
            },
            cancellationToken).ConfigureAwait(false);
    }

    private static async Task InsertFailedAsync(Session session, long jobId, long attempt, FailureRecord failure, string? cause, CancellationToken cancellationToken)
    {
        await using var command = session.Command(ClaimsSql.FailedInsert);
        AddFailure(command, jobId, attempt, failure, cause);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task ReadyKeepingSuspectAsync(Session session, long jobId, CancellationToken cancellationToken)
    {
        await using var ready = session.Command(ClaimsSql.ReadyInsertKeepSuspect);
        ready.Parameters.AddWithValue("@job_id", jobId);
        await ready.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task InsertReadyAsync(Session session, long jobId, string queue, long priority, CancellationToken cancellationToken)
    {
        await using var ready = session.Command(ClaimsSql.ReadyInsert);
        ready.Parameters.AddWithValue("@job_id", jobId);
        ready.Parameters.AddWithValue("@queue", queue);
        ready.Parameters.AddWithValue("@priority", priority);
        await ready.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

using Keel.Storage;

namespace Keel.MySql;

/// <summary>Cancelling running jobs: the request on the claim, the worker's poll, and the cancelled run's end under its claim.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<ClaimCancelRequest?> ClaimCancelRequestAsync(ClaimCancelRequestParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                long claimId;
                long processId;
                bool already;
                await using (var select = session.Command(CancelSql.ClaimOfJob))
                {
                    select.Parameters.AddWithValue("@job_id", parameters.JobId);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return null;
                    }

                    (claimId, processId, already) = (r.GetInt64(0), r.GetInt64(1), Flag(r, 2));
                }

                if (!already)
                {
                    await using var update = session.Command(CancelSql.ClaimCancelRequest);
                    update.Parameters.AddWithValue("@claim_id", claimId);
                    update.Parameters.AddWithValue("@reason", parameters.Reason);
                    update.Parameters.AddWithValue("@resume", parameters.Resume);
                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                return (ClaimCancelRequest?)new ClaimCancelRequest(claimId, processId, already);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimCancelRequested>> ClaimsCancelRequestedAsync(ClaimsCancelRequestedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await ReadAsync(
            null,
            async session =>
            {
                await using var select = session.Command(CancelSql.ClaimsCancelRequested);
                select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                var requests = new List<ClaimCancelRequested>();
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    requests.Add(new ClaimCancelRequested(r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? "" : r.GetString(2)) { Resume = Flag(r, 3) });
                }

                return (IReadOnlyList<ClaimCancelRequested>)requests;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<bool> JobCancelFinishAsync(JobCancelFinishParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Ending);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                long jobId;
                long attempt;
                long claimedAt;
                await using (var select = session.Command(CancelSql.ClaimLock))
                {
                    select.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    select.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                    select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return false; // The claim was recovered by someone else: this late end must change nothing.
                    }

                    (jobId, attempt, claimedAt) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
                }

                await using (var finish = session.Command(CancelSql.JobCancelFinish))
                {
                    finish.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    finish.Parameters.AddWithValue("@job_id", jobId);
                    await finish.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                var e = parameters.Ending;
                await InsertRunAsync(session, new RunRow(jobId, attempt, parameters.Claim.ClaimId, parameters.Runner, claimedAt, e.Outcome, e.Cause, false, e.Detail, null), cancellationToken).ConfigureAwait(false);
                await LeaveCancelledAsync(session, jobId, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }
}

using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>Cancelling running jobs: the request on the claim, the worker's poll, and the cancelled run's end under its claim.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<ClaimCancelRequest?> ClaimCancelRequestAsync(ClaimCancelRequestParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                long claimId;
                long processId;
                bool already;
                await using (var select = Command(connection, transaction, CancelSql.ClaimOfJob))
                {
                    select.Parameters.AddWithValue("@job_id", parameters.JobId);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken);
                    if (!await r.ReadAsync(cancellationToken))
                    {
                        return null;
                    }

                    (claimId, processId, already) = (r.GetInt64(0), r.GetInt64(1), r.GetBoolean(2));
                }

                if (!already)
                {
                    await using var update = Command(connection, transaction, CancelSql.ClaimCancelRequest);
                    update.Parameters.AddWithValue("@claim_id", claimId);
                    update.Parameters.AddWithValue("@reason", parameters.Reason);
                    update.Parameters.AddWithValue("@resume", parameters.Resume);
                    update.Parameters.AddWithValue("@now", Micros(parameters.Now));
                    await update.ExecuteNonQueryAsync(cancellationToken);
                }

                return (ClaimCancelRequest?)new ClaimCancelRequest(claimId, processId, already);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimCancelRequested>> ClaimsCancelRequestedAsync(ClaimsCancelRequestedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, CancelSql.ClaimsCancelRequested);
        select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var requests = new List<ClaimCancelRequested>();
        while (await r.ReadAsync(cancellationToken))
        {
            requests.Add(new ClaimCancelRequested(r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? "" : r.GetString(2)) { Resume = r.GetBoolean(3) });
        }

        return requests;
    }

    /// <inheritdoc />
    public Task<bool> JobCancelFinishAsync(JobCancelFinishParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                long jobId;
                long attempt;
                long claimedAt;
                await using (var delete = Command(connection, transaction, ClaimsSql.ClaimDelete))
                {
                    delete.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    delete.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                    delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    await using var r = await delete.ExecuteReaderAsync(cancellationToken);
                    if (!await r.ReadAsync(cancellationToken))
                    {
                        return false;
                    }

                    (jobId, attempt, claimedAt) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
                }

                await ExecuteForJobAsync(connection, transaction, CancelSql.JobDiscardCancelled, jobId, now, cancellationToken);
                var e = parameters.Ending;
                await InsertRunAsync(connection, transaction, new RunRow(jobId, attempt, parameters.Claim.ClaimId, parameters.Runner, claimedAt, e.Outcome, e.Cause, false, e.Detail, null), now, cancellationToken);
                await LeaveCancelledAsync(connection, transaction, jobId, now, cancellationToken);
                return true;
            },
            cancellationToken);
    }
}

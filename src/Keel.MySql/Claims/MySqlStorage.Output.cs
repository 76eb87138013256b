using Keel.Storage;

namespace Keel.MySql;

/// <summary>A run's output: the lines it logged and its result, written under its claim.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<bool> JobLogsAppendAsync(JobLogsAppendParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            null,
            async session =>
            {
                if (!await ClaimLockedAsync(session, parameters.ProcessId, parameters.Claim, cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                await using var insert = session.Command(CheckpointSql.LogInsert);
                insert.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                insert.Parameters.AddWithValue("@attempt", parameters.Claim.Attempt);
                var at = insert.Parameters.AddWithValue("@logged_at", 0L);
                var level = insert.Parameters.AddWithValue("@level", string.Empty);
                var message = insert.Parameters.AddWithValue("@message", string.Empty);
                foreach (var line in parameters.Lines)
                {
                    at.Value = TimeEncoding.ToMicros(line.At);
                    level.Value = line.Level;
                    message.Value = line.Message;
                    await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> JobResultSaveAsync(JobResultSaveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SaveUnderClaimAsync(CheckpointSql.ResultSave, "@result", parameters.Result, parameters.ProcessId, parameters.Claim, cancellationToken);
    }

    /// <summary>Locks the claim (shared) while the process holds it; false when it does not.</summary>
    private static async Task<bool> ClaimLockedAsync(Session session, long processId, ClaimRef claim, CancellationToken cancellationToken)
    {
        await using var select = session.Command(CheckpointSql.ClaimLockShared);
        select.Parameters.AddWithValue("@claim_id", claim.ClaimId);
        select.Parameters.AddWithValue("@job_id", claim.JobId);
        select.Parameters.AddWithValue("@process_id", processId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await r.ReadAsync(cancellationToken).ConfigureAwait(false);
    }
}

using Keel.Storage;

namespace Keel.MySql;

/// <summary>Checkpoints and progress: a running job's saved state and how far it got, fenced by its claim.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<bool> JobProgressReportAsync(JobProgressParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                await using var update = session.Command(CheckpointSql.ProgressReport);
                update.Parameters.AddWithValue("@progress", parameters.Fraction);
                update.Parameters.AddWithValue("@message", (object?)parameters.Message ?? DBNull.Value);
                update.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> JobCheckpointSaveAsync(JobCheckpointSaveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SaveUnderClaimAsync(CheckpointSql.CheckpointSave, "@checkpoint", parameters.Checkpoint, parameters.ProcessId, parameters.Claim, cancellationToken);
    }

    /// <summary>
    /// Writes one value of the job (<paramref name="sql"/> sets it by <c>@job_id</c>) while the process holds the claim,
    /// whose row stays share-locked until the write commits; false (nothing written) once the claim was recovered or released.
    /// </summary>
    private Task<bool> SaveUnderClaimAsync(string sql, string name, string value, long processId, ClaimRef claim, CancellationToken cancellationToken)
        => WriteAsync(
            null,
            async session =>
            {
                if (!await ClaimLockedAsync(session, processId, claim, cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                await using var update = session.Command(sql);
                update.Parameters.AddWithValue(name, value);
                update.Parameters.AddWithValue("@job_id", claim.JobId);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
}

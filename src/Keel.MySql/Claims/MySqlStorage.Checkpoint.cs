using Keel.Storage;

namespace Keel.MySql;

/// <summary>Checkpoints: a running job's saved state, fenced by its claim.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<bool> JobCheckpointSaveAsync(JobCheckpointSaveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            null,
            async session =>
            {
                await using (var select = session.Command(CheckpointSql.ClaimLockShared))
                {
                    select.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    select.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                    select.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return false; // The claim was recovered or released: this run may no longer write.
                    }
                }

                await using var update = session.Command(CheckpointSql.CheckpointSave);
                update.Parameters.AddWithValue("@checkpoint", parameters.Checkpoint);
                update.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken);
    }
}

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

using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>Checkpoints and progress: a running job's saved state and how far it got, fenced by its claim.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<bool> JobProgressReportAsync(JobProgressParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = Command(connection, transaction, CheckpointSql.ProgressReport);
                update.Parameters.AddWithValue("@progress", parameters.Fraction);
                update.Parameters.AddWithValue("@message", (object?)parameters.Message ?? DBNull.Value);
                update.Parameters.AddWithValue("@now", Micros(parameters.Now));
                update.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
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
    /// Writes one value of the job with one statement that names the claim (<paramref name="sql"/> updates only while the
    /// process holds it, in the write transaction); false (nothing written) once the claim was recovered or released.
    /// </summary>
    private Task<bool> SaveUnderClaimAsync(string sql, string name, string value, long processId, ClaimRef claim, CancellationToken cancellationToken)
        => WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = Command(connection, transaction, sql);
                update.Parameters.AddWithValue(name, value);
                update.Parameters.AddWithValue("@job_id", claim.JobId);
                update.Parameters.AddWithValue("@claim_id", claim.ClaimId);
                update.Parameters.AddWithValue("@process_id", processId);
                return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
            },
            cancellationToken);
}

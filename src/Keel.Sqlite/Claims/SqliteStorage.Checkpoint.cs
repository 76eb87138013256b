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
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var update = Command(connection, transaction, CheckpointSql.CheckpointSave);
                update.Parameters.AddWithValue("@checkpoint", parameters.Checkpoint);
                update.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                update.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                update.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
            },
            cancellationToken);
    }
}

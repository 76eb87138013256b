using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>A run's output: the lines it logged and its result, written under its claim.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<bool> JobLogsAppendAsync(JobLogsAppendParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using (var held = Command(connection, transaction, CheckpointSql.ClaimHeldForWrite))
                {
                    held.Parameters.AddWithValue("@claim_id", parameters.Claim.ClaimId);
                    held.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                    held.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    if (Convert.ToInt64(await held.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) == 0)
                    {
                        return false;
                    }
                }

                await using var insert = Command(connection, transaction, CheckpointSql.LogInsert);
                insert.Parameters.AddWithValue("@job_id", parameters.Claim.JobId);
                insert.Parameters.AddWithValue("@attempt", parameters.Claim.Attempt);
                var at = insert.Parameters.Add("@logged_at", Microsoft.Data.Sqlite.SqliteType.Integer);
                var level = insert.Parameters.Add("@level", Microsoft.Data.Sqlite.SqliteType.Text);
                var message = insert.Parameters.Add("@message", Microsoft.Data.Sqlite.SqliteType.Text);
                foreach (var line in parameters.Lines)
                {
                    at.Value = TimeEncoding.ToMicros(line.At);
                    level.Value = line.Level;
                    message.Value = line.Message;
                    await insert.ExecuteNonQueryAsync(cancellationToken);
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
}

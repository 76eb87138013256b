using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Checkpoints and progress: a running job's saved state and how far it got, fenced by its claim.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<bool> JobProgressReportAsync(JobProgressParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(CheckpointSql.ProgressReport, connection);
        command.Parameters.Add(new NpgsqlParameter<double>("progress", NpgsqlDbType.Double) { TypedValue = parameters.Fraction });
        command.Parameters.Add(Text("message", parameters.Message));
        command.Parameters.Add(Now(parameters.Now));
        command.Parameters.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.ClaimId });
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <inheritdoc />
    public Task<bool> JobCheckpointSaveAsync(JobCheckpointSaveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SaveUnderClaimAsync(CheckpointSql.CheckpointSave, "checkpoint", parameters.Checkpoint, parameters.ProcessId, parameters.Claim, cancellationToken);
    }

    /// <summary>
    /// Writes one value of the job with one statement that names the claim (<paramref name="sql"/> locks the claim row
    /// and updates only while the process holds it); false (nothing written) once the claim was recovered or released.
    /// </summary>
    private async Task<bool> SaveUnderClaimAsync(string sql, string name, string value, long processId, ClaimRef claim, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<string>(name, NpgsqlDbType.Text) { TypedValue = value });
        command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = claim.JobId });
        command.Parameters.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = claim.ClaimId });
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = processId });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }
}

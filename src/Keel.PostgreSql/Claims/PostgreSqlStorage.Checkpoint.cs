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
    public async Task<bool> JobCheckpointSaveAsync(JobCheckpointSaveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(CheckpointSql.CheckpointSave, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("checkpoint", NpgsqlDbType.Text) { TypedValue = parameters.Checkpoint });
        command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.JobId });
        command.Parameters.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.ClaimId });
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>A run's output: the lines it logged and its result, written under its claim.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<bool> JobLogsAppendAsync(JobLogsAppendParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(CheckpointSql.LogsAppend, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.JobId });
        command.Parameters.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.ClaimId });
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(new NpgsqlParameter<DateTimeOffset[]>("logged_at", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { TypedValue = [.. parameters.Lines.Select(l => l.At.ToUniversalTime())] });
        command.Parameters.Add(new NpgsqlParameter<string[]>("level", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. parameters.Lines.Select(l => l.Level)] });
        command.Parameters.Add(new NpgsqlParameter<string[]>("message", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. parameters.Lines.Select(l => l.Message)] });
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) == 1;
    }

    /// <inheritdoc />
    public Task<bool> JobResultSaveAsync(JobResultSaveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return SaveUnderClaimAsync(CheckpointSql.ResultSave, "result", parameters.Result, parameters.ProcessId, parameters.Claim, cancellationToken);
    }
}

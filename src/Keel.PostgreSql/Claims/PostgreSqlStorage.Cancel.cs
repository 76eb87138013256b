using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Cancelling running jobs: the request on the claim (with a NOTIFY), the worker's poll, and the cancelled run's end under its claim.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<ClaimCancelRequest?> ClaimCancelRequestAsync(ClaimCancelRequestParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(CancelSql.ClaimCancelRequest, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.JobId });
        command.Parameters.Add(new NpgsqlParameter<string>("reason", NpgsqlDbType.Text) { TypedValue = parameters.Reason });
        command.Parameters.Add(new NpgsqlParameter<bool>("resume", NpgsqlDbType.Boolean) { TypedValue = parameters.Resume });
        command.Parameters.Add(Now(parameters.Now));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new ClaimCancelRequest(reader.GetInt64(0), reader.GetInt64(1), reader.GetBoolean(2))
            : null;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimCancelRequested>> ClaimsCancelRequestedAsync(ClaimsCancelRequestedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(CancelSql.ClaimsCancelRequested, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var requests = new List<ClaimCancelRequested>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            requests.Add(new ClaimCancelRequested(reader.GetInt64(0), reader.GetInt64(1), reader.IsDBNull(2) ? "" : reader.GetString(2)) { Resume = reader.GetBoolean(3) });
        }

        return requests;
    }

    /// <inheritdoc />
    public async Task<bool> JobCancelFinishAsync(JobCancelFinishParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Ending);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // A cancelled job in a workflow settles it in the same transaction (a cancel is rare: the commit costs little).
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(CancelSql.JobCancelFinish, connection, transaction);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.ClaimId });
        p.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.JobId });
        p.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        p.Add(Now(parameters.Now));
        AddRunEnding(p, parameters.Ending, parameters.Runner);

        bool held;
        bool workflow;
        PermitRelease? release = null;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            held = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetInt64(0) > 0;
            if (held && !reader.IsDBNull(1))
            {
                release = new PermitRelease(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
            }

            workflow = held && !reader.IsDBNull(3) && reader.GetBoolean(3);
        }

        if (workflow)
        {
            await SettleIdsAsync(connection, transaction, [parameters.Claim.JobId], ContinueWhen.Discarded, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // The job gave its permit back: promote the next blocked job.
        if (release is { } r)
        {
            await PromoteAfterCommitAsync([r], parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return held;
    }
}

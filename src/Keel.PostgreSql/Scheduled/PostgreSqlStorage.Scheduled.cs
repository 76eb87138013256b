using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Scheduled jobs: the dispatch of due ones to ready (a limited job takes its permit then).</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<int> ScheduledDispatchAsync(ScheduledDispatchParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.BatchSize <= 0)
        {
            return 0;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        int moved;
        long[]? limited;
        await using (var command = new NpgsqlCommand(ScheduledSql.ScheduledDispatch, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<int>("limit", NpgsqlDbType.Integer) { TypedValue = parameters.BatchSize });
            command.Parameters.Add(Now(parameters.Now));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            moved = checked((int)reader.GetInt64(0));
            limited = reader.IsDBNull(2) ? null : reader.GetFieldValue<long[]>(2);
        }

        // Due jobs with a concurrency key (still locked by the statement above) take a permit or become blocked,
        // key by key, each key in dispatch order; either way they left scheduled.
        if (limited is { Length: > 0 })
        {
            var outcome = await AcquireAsync(connection, transaction, limited, discard: false, parameters.Now, cancellationToken).ConfigureAwait(false);
            moved += outcome.Ready + outcome.Blocked;
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return moved;
    }
}

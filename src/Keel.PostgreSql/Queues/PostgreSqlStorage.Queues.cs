using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Queues: the known queues with their counts, pause and resume.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<QueueInfo>> QueuesListAsync(DateTimeOffset? now, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(QueuesSql.QueuesList, connection);
        command.Parameters.Add(Now(now));
        var list = new List<QueueInfo>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new QueueInfo(
                reader.GetString(0),
                reader.GetInt64(1),
                reader.GetInt64(2),
                reader.GetInt64(3),
                reader.GetInt64(4),
                reader.GetInt64(5),
                reader.IsDBNull(6) ? null : Age(reader, 6),
                reader.GetBoolean(7)));
        }

        return list;
    }

    /// <inheritdoc />
    public async Task QueuePauseAsync(QueuePauseParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Queue);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(parameters.Paused ? QueuesSql.QueuePause : QueuesSql.QueueResume, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = parameters.Queue });
        if (parameters.Paused)
        {
            command.Parameters.Add(Now(parameters.Now));
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Queues: the known queues with their counts, pause and resume.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<QueueInfo>> QueuesListAsync(DateTimeOffset? now, CancellationToken cancellationToken)
    {
        var at = Micros(now);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, QueuesSql.QueuesList);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var queues = new List<QueueInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            TimeSpan? oldest = r.IsDBNull(6) ? null : Age(at, r.GetInt64(6));
            queues.Add(new QueueInfo(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), oldest, r.GetBoolean(7)));
        }

        return queues;
    }

    /// <inheritdoc />
    public Task QueuePauseAsync(QueuePauseParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var command = Command(connection, transaction, parameters.Paused ? QueuesSql.QueuePause : QueuesSql.QueueResume);
                command.Parameters.AddWithValue("@queue", parameters.Queue);
                command.Parameters.AddWithValue("@now", Micros(parameters.Now));
                return await command.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }
}

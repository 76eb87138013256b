using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Scheduled jobs: the dispatch of due ones to ready (a limited job takes its permit then).</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<int> ScheduledDispatchAsync(ScheduledDispatchParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var due = new List<(long JobId, string Queue, long Priority)>();
                await using (var delete = Command(connection, transaction, ScheduledSql.ScheduledDueDelete))
                {
                    delete.Parameters.AddWithValue("@now", now);
                    delete.Parameters.AddWithValue("@limit", parameters.BatchSize);
                    await using var reader = await delete.ExecuteReaderAsync(cancellationToken);
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        due.Add((reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2)));
                    }
                }

                // A limited job takes its permit now, when it becomes due, not when it was scheduled.
                foreach (var row in due)
                {
                    await MakeDueAsync(connection, transaction, await RoutingAsync(connection, transaction, row.JobId, cancellationToken), discardOnConflict: false, now, cancellationToken);
                }

                return due.Count;
            },
            cancellationToken);
    }
}

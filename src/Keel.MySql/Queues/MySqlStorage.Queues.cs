using System.Globalization;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>Queues: the known queues with their counts, pause and resume.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<IReadOnlyList<QueueInfo>> QueuesListAsync(DateTimeOffset? now, CancellationToken cancellationToken)
        => ReadAsync<IReadOnlyList<QueueInfo>>(
            now,
            async session =>
            {
                await using var select = session.Command(QueuesSql.QueuesList);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                var queues = new List<QueueInfo>();
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var at = Convert.ToInt64(r.GetValue(8), CultureInfo.InvariantCulture);
                    TimeSpan? oldest = r.IsDBNull(6) ? null : Age(at, r.GetInt64(6));
                    queues.Add(new QueueInfo(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), oldest, Flag(r, 7)));
                }

                return queues;
            },
            cancellationToken);

    /// <inheritdoc />
    public Task QueuePauseAsync(QueuePauseParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                await using var command = session.Command(parameters.Paused ? QueuesSql.QueuePause : QueuesSql.QueueResume);
                command.Parameters.AddWithValue("@queue", parameters.Queue);
                return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }
}

using Keel.Storage;

namespace Keel.MySql;

/// <summary>Scheduled jobs: the dispatch of due ones to ready (a limited job takes its permit then).</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<int> ScheduledDispatchAsync(ScheduledDispatchParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                var due = new List<long>();
                await using (var select = session.Command(ScheduledSql.ScheduledDispatch))
                {
                    select.Parameters.AddWithValue("@limit", parameters.BatchSize);
                    await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        due.Add(reader.GetInt64(0));
                    }
                }

                if (due.Count == 0)
                {
                    return 0;
                }

                await session.ExecuteAsync(ScheduledSql.ScheduledDueDelete(due), cancellationToken).ConfigureAwait(false);
                var limited = new List<long>();
                await using (var ready = session.Command(ScheduledSql.ScheduledDueReady(IdList(due))))
                {
                    await using var reader = await ready.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        limited.Add(reader.GetInt64(0));
                    }
                }

                // A limited job takes its permit now, when it becomes due, not when it was scheduled.
                foreach (var jobId in limited)
                {
                    await MakeDueAsync(session, await RoutingAsync(session, jobId, cancellationToken).ConfigureAwait(false), discardOnConflict: false, cancellationToken).ConfigureAwait(false);
                }

                return due.Count;
            },
            cancellationToken);
    }
}

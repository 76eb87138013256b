using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Operator actions and maintenance: retry, discard, run now, queues, retention, concurrency repair.</summary>
public sealed partial class SqliteStorage
{
    private const string JobStateExpression = """
        CASE WHEN j.finished_at IS NOT NULL THEN 'Finished'
             WHEN j.discarded_at IS NOT NULL THEN 'Discarded'
             WHEN f.job_id IS NOT NULL THEN 'Failed'
             WHEN EXISTS (SELECT 1 FROM keel_claimed_executions c WHERE c.job_id = j.id) THEN 'Claimed'
             WHEN EXISTS (SELECT 1 FROM keel_ready_executions r WHERE r.job_id = j.id) THEN 'Ready'
             WHEN EXISTS (SELECT 1 FROM keel_scheduled_executions s WHERE s.job_id = j.id) THEN 'Scheduled'
             WHEN EXISTS (SELECT 1 FROM keel_blocked_executions b WHERE b.job_id = j.id) THEN 'Blocked'
        END
        """;

    private const string SelectionFilter = """
        (@ids IS NULL OR j.id IN (SELECT value FROM json_each(@ids)))
        AND (@queue IS NULL OR j.queue = @queue)
        AND (@kind IS NULL OR j.kind = @kind)
        AND (@exception_type IS NULL OR f.exception_type = @exception_type)
        AND (@failed_after IS NULL OR f.created_at >= @failed_after)
        AND (@failed_before IS NULL OR f.created_at < @failed_before)
        """;

    private const string RetryCandidates = "SELECT j.id FROM keel_failed_executions f JOIN keel_jobs j ON j.id = f.job_id WHERE " + SelectionFilter + " ORDER BY f.created_at, j.id LIMIT @limit";

    private const string DiscardCandidates = "SELECT j.id, state FROM (SELECT j.id, " + JobStateExpression + " AS state FROM keel_jobs j LEFT JOIN keel_failed_executions f ON f.job_id = j.id WHERE " + SelectionFilter + ") j WHERE state IN (SELECT value FROM json_each(@states)) ORDER BY j.id LIMIT @limit";

    private const string RetryReset = "UPDATE keel_jobs SET attempts = 0, worker_losses = 0, suspect = 0 WHERE id = @job_id RETURNING unique_key";

    private const string ExecutionsDelete = """
        DELETE FROM keel_ready_executions WHERE job_id = @job_id;
        DELETE FROM keel_scheduled_executions WHERE job_id = @job_id;
        DELETE FROM keel_blocked_executions WHERE job_id = @job_id;
        DELETE FROM keel_failed_executions WHERE job_id = @job_id;
        """;

    private const string FinishedDelete = """
        DELETE FROM keel_jobs WHERE id IN (
            SELECT id FROM (
                SELECT id FROM keel_jobs WHERE finished_at < @cutoff
                UNION ALL
                SELECT id FROM keel_jobs WHERE discarded_at < @cutoff)
            LIMIT @limit)
        """;

    /// <inheritdoc />
    public Task<int> JobsRetryAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var ids = await SelectIdsAsync(connection, transaction, RetryCandidates, parameters, null, cancellationToken);
                foreach (var id in ids)
                {
                    await using (var delete = Command(connection, transaction, "DELETE FROM keel_failed_executions WHERE job_id = @job_id"))
                    {
                        delete.Parameters.AddWithValue("@job_id", id);
                        await delete.ExecuteNonQueryAsync(cancellationToken);
                    }

                    await using (var reset = Command(connection, transaction, RetryReset))
                    {
                        reset.Parameters.AddWithValue("@job_id", id);
                        if (await reset.ExecuteScalarAsync(cancellationToken) is string uniqueKey)
                        {
                            await using var take = Command(connection, transaction, JobsSql.UniqueKeyTake);
                            take.Parameters.AddWithValue("@key", uniqueKey);
                            take.Parameters.AddWithValue("@job_id", id);
                            await take.ExecuteNonQueryAsync(cancellationToken);
                        }
                    }

                    await MakeDueAsync(connection, transaction, await RoutingAsync(connection, transaction, id, cancellationToken), discardOnConflict: false, now, cancellationToken);
                }

                return ids.Count;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> JobsDiscardAsync(JobsSelectionParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var states = (parameters.States ?? [JobState.Ready, JobState.Scheduled, JobState.Blocked, JobState.Failed])
            .Where(s => s is JobState.Ready or JobState.Scheduled or JobState.Blocked or JobState.Failed)
            .Select(s => s.ToString())
            .ToList();
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var candidates = new List<(long Id, string State)>();
                await using (var select = Command(connection, transaction, DiscardCandidates))
                {
                    BindSelection(select, parameters);
                    select.Parameters.AddWithValue("@states", "[" + string.Join(',', states.Select(s => "\"" + s + "\"")) + "]");
                    await using var r = await select.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        candidates.Add((r.GetInt64(0), r.GetString(1)));
                    }
                }

                foreach (var (id, state) in candidates)
                {
                    await ExecuteForJobAsync(connection, transaction, ExecutionsDelete, id, now, cancellationToken);
                    await ExecuteForJobAsync(connection, transaction, JobsSql.JobDiscard, id, now, cancellationToken);
                    await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, id, now, cancellationToken);
                    if (state == nameof(JobState.Ready))
                    {
                        var routing = await RoutingAsync(connection, transaction, id, cancellationToken);
                        if (routing.Key is not null)
                        {
                            await ReleasePermitAsync(connection, transaction, routing, now, cancellationToken);
                        }
                    }
                }

                return candidates.Count;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<bool> JobRunNowAsync(JobRunNowParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                await using (var scheduled = Command(connection, transaction, ScheduledSql.ScheduledDelete))
                {
                    scheduled.Parameters.AddWithValue("@job_id", parameters.JobId);
                    if (await scheduled.ExecuteNonQueryAsync(cancellationToken) == 1)
                    {
                        await MakeDueAsync(connection, transaction, await RoutingAsync(connection, transaction, parameters.JobId, cancellationToken), discardOnConflict: false, now, cancellationToken);
                        return true;
                    }
                }

                string? key;
                await using (var blocked = Command(connection, transaction, ConcurrencySql.BlockedDelete))
                {
                    blocked.Parameters.AddWithValue("@job_id", parameters.JobId);
                    await using var r = await blocked.ExecuteReaderAsync(cancellationToken);
                    if (!await r.ReadAsync(cancellationToken))
                    {
                        return false;
                    }

                    key = r.GetString(0);
                }

                // An operator's override: ready now, whatever the limit; it holds a permit like any ready job.
                await using (var take = Command(connection, transaction, ConcurrencySql.SemaphoreTake))
                {
                    take.Parameters.AddWithValue("@key", key);
                    take.Parameters.AddWithValue("@now", now);
                    await take.ExecuteNonQueryAsync(cancellationToken);
                }

                var routing = await RoutingAsync(connection, transaction, parameters.JobId, cancellationToken);
                await InsertReadyAsync(connection, transaction, routing.JobId, routing.Queue, routing.Priority, now, cancellationToken);
                return true;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> JobsClearFinishedAsync(JobsClearFinishedParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                await using var delete = Command(connection, transaction, FinishedDelete);
                delete.Parameters.AddWithValue("@cutoff", Micros(parameters.Now) - (parameters.OlderThan.Ticks / 10));
                delete.Parameters.AddWithValue("@limit", parameters.BatchSize);
                return await delete.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }

    private static async Task<List<long>> SelectIdsAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, JobsSelectionParams parameters, string? states, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, sql);
        BindSelection(select, parameters);
        if (states is not null)
        {
            select.Parameters.AddWithValue("@states", states);
        }

        var ids = new List<long>();
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            ids.Add(r.GetInt64(0));
        }

        return ids;
    }

    private static void BindSelection(SqliteCommand command, JobsSelectionParams parameters)
    {
        var filter = parameters.Filter ?? new JobFilter();
        command.Parameters.AddWithValue("@ids", parameters.JobIds is null ? DBNull.Value : JsonArray(parameters.JobIds));
        command.Parameters.AddWithValue("@queue", (object?)filter.Queue ?? DBNull.Value);
        command.Parameters.AddWithValue("@kind", (object?)filter.Kind ?? DBNull.Value);
        command.Parameters.AddWithValue("@exception_type", (object?)filter.ExceptionType ?? DBNull.Value);
        command.Parameters.AddWithValue("@failed_after", filter.FailedAfter is { } a ? TimeEncoding.ToMicros(a) : DBNull.Value);
        command.Parameters.AddWithValue("@failed_before", filter.FailedBefore is { } b ? TimeEncoding.ToMicros(b) : DBNull.Value);
        command.Parameters.AddWithValue("@limit", Math.Max(1, parameters.BatchSize));
    }
}

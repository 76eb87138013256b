namespace Keel.MySql;

/// <summary>The SQL of <c>keel_scheduled_executions</c> on MariaDB/MySQL: jobs waiting for their time. Times are <c>BIGINT</c> microseconds.</summary>
internal static class ScheduledSql
{
    /// <summary>Schedules a job for <c>@scheduled_at</c>.</summary>
    public const string ScheduledInsert = """
        INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
        VALUES (@job_id, @queue, @priority, @scheduled_at, @keel_now)
        """;

    /// <summary>Locks up to <c>@limit</c> due jobs, oldest first, skipping any another dispatcher holds; returns (job, queue, priority).</summary>
    public const string ScheduledDispatch = """
        SELECT job_id, queue, priority FROM keel_scheduled_executions
        WHERE scheduled_at <= @keel_now
        ORDER BY scheduled_at, priority, job_id
        LIMIT @limit
        FOR UPDATE SKIP LOCKED
        """;

    /// <summary>Takes the locked due jobs <paramref name="ids"/> out of scheduled.</summary>
    /// <param name="ids">The job ids.</param>
    /// <returns>The statements.</returns>
    public static string ScheduledDueDelete(IEnumerable<long> ids) => ConnectionSql.Each(ids, id => $"DELETE FROM keel_scheduled_executions WHERE job_id = {id}");

    /// <summary>
    /// Makes the taken due jobs <paramref name="ids"/> that need no permit ready, all at once; returns the others (with a
    /// concurrency key), which take their permits one by one.
    /// </summary>
    /// <param name="ids">The job ids.</param>
    /// <returns>The statements.</returns>
    public static string ScheduledDueReady(string ids) => $"""
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
        SELECT id, queue, priority, @keel_now FROM keel_jobs WHERE id IN ({ids}) AND concurrency_key IS NULL;
        SELECT id FROM keel_jobs WHERE id IN ({ids}) AND concurrency_key IS NOT NULL ORDER BY id
        """;

    /// <summary>Takes one job out of scheduled (run now).</summary>
    public const string ScheduledDelete = "DELETE FROM keel_scheduled_executions WHERE job_id = @job_id";
}

namespace Keel.Sqlite;

/// <summary>The SQL of <c>keel_scheduled_executions</c> on SQLite: jobs waiting for their time. Times are Unix microseconds.</summary>
internal static class ScheduledSql
{
    /// <summary>Schedules a job for <c>@scheduled_at</c>.</summary>
    public const string ScheduledInsert = """
        INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
        VALUES (@job_id, @queue, @priority, @scheduled_at, @now)
        """;

    /// <summary>Takes up to <c>@limit</c> due jobs out of scheduled, oldest first; returns (job, queue, priority).</summary>
    public const string ScheduledDueDelete = """
        DELETE FROM keel_scheduled_executions
        WHERE job_id IN (
            SELECT job_id FROM keel_scheduled_executions
            WHERE scheduled_at <= @now
            ORDER BY scheduled_at, priority, job_id
            LIMIT @limit)
        RETURNING job_id, queue, priority
        """;

    /// <summary>Takes one job out of scheduled (run now).</summary>
    public const string ScheduledDelete = "DELETE FROM keel_scheduled_executions WHERE job_id = @job_id";
}

namespace Keel.Sqlite;

/// <summary>The SQL of recurring tasks on SQLite. Times are Unix microseconds.</summary>
internal static class SqliteRecurringStatements
{
    private const string Columns = "key, kind, args, schedule, time_zone, queue, priority, max_attempts, catch_up, catch_up_limit, static, description";

    /// <summary>Upserts one task; for a dynamic upsert <c>{guard}</c> keeps a static task with the same key untouched.</summary>
    public const string TaskUpsertTemplate = $"""
        INSERT INTO keel_recurring_tasks ({Columns}, created_at, updated_at)
        VALUES (@key, @kind, @args, @schedule, @time_zone, @queue, @priority, @max_attempts, @catch_up, @catch_up_limit, @static, @description, @now, @now)
        ON CONFLICT (key) DO UPDATE SET
            kind = excluded.kind, args = excluded.args, schedule = excluded.schedule, time_zone = excluded.time_zone,
            queue = excluded.queue, priority = excluded.priority, max_attempts = excluded.max_attempts,
            catch_up = excluded.catch_up, catch_up_limit = excluded.catch_up_limit, static = excluded.static,
            description = excluded.description, updated_at = excluded.updated_at
        {"{guard}"}
        """;

    public const string DynamicGuard = "WHERE keel_recurring_tasks.static = 0";

    public const string StaticDeleteMissing = "DELETE FROM keel_recurring_tasks WHERE static = 1 AND key NOT IN (SELECT value FROM json_each(@keys))";

    public const string DynamicDelete = "DELETE FROM keel_recurring_tasks WHERE key = @key AND static = 0";

    public const string TasksList = $"""
        SELECT t.key, t.kind, t.args, t.schedule, t.time_zone, t.queue, t.priority, t.max_attempts, t.catch_up, t.catch_up_limit,
               t.static, t.description, e.run_at, e.job_id
        FROM keel_recurring_tasks t
        LEFT JOIN keel_recurring_executions e ON e.id = (
            SELECT x.id FROM keel_recurring_executions x WHERE x.task_key = t.key ORDER BY x.run_at DESC LIMIT 1)
        WHERE @key IS NULL OR t.key = @key
        ORDER BY t.key
        """;

    /// <summary>Records a run unless it is already recorded; returns the new row's id, or no row.</summary>
    public const string ExecutionInsert = """
        INSERT INTO keel_recurring_executions (task_key, run_at, job_id, created_at)
        VALUES (@task_key, @run_at, NULL, @now)
        ON CONFLICT (task_key, run_at) DO NOTHING
        RETURNING id
        """;

    public const string ExecutionLinkJob = "UPDATE keel_recurring_executions SET job_id = @job_id WHERE id = @id";
}

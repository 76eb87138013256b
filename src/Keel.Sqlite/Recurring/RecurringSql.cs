namespace Keel.Sqlite;

/// <summary>The SQL of recurring tasks and their recorded runs on SQLite. Times are Unix microseconds.</summary>
internal static class RecurringSql
{
    /// <summary>The task columns an upsert writes, in order.</summary>
    private const string Columns = "key, kind, args, schedule, time_zone, queue, priority, max_attempts, catch_up, catch_up_limit, static, description";

    /// <summary>Inserts one task or replaces the one with its key (the <c>WHERE</c> a dynamic upsert adds follows it).</summary>
    private const string TaskUpsert = $"""
        INSERT INTO keel_recurring_tasks ({Columns}, created_at, updated_at)
        VALUES (@key, @kind, @args, @schedule, @time_zone, @queue, @priority, @max_attempts, @catch_up, @catch_up_limit, @static, @description, @now, @now)
        ON CONFLICT (key) DO UPDATE SET
            kind = excluded.kind, args = excluded.args, schedule = excluded.schedule, time_zone = excluded.time_zone,
            queue = excluded.queue, priority = excluded.priority, max_attempts = excluded.max_attempts,
            catch_up = excluded.catch_up, catch_up_limit = excluded.catch_up_limit, static = excluded.static,
            description = excluded.description, updated_at = excluded.updated_at
        """;

    /// <summary>Upserts one static task (one statement per task: SQLite has no arrays to upsert them all at once).</summary>
    public const string StaticUpsert = TaskUpsert;

    /// <summary>Deletes every static task whose key is not in the JSON array <c>@keys</c>.</summary>
    public const string StaticDeleteMissing = "DELETE FROM keel_recurring_tasks WHERE static = 1 AND key NOT IN (SELECT value FROM json_each(@keys))";

    /// <summary>Upserts one dynamic task; a static task with the same key is left untouched (no row affected).</summary>
    public const string DynamicUpsert = TaskUpsert + "\nWHERE keel_recurring_tasks.static = 0";

    /// <summary>Deletes one dynamic task (its recorded runs stay).</summary>
    public const string DynamicDelete = "DELETE FROM keel_recurring_tasks WHERE key = @key AND static = 0";

    /// <summary>Tasks by key (all, or the one <c>@key</c>), each with its newest recorded run.</summary>
    public const string TasksList = """
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

    /// <summary>Links a recorded run to the job it enqueued.</summary>
    public const string ExecutionLinkJob = "UPDATE keel_recurring_executions SET job_id = @job_id WHERE id = @id";
}

namespace Keel.PostgreSql;

/// <summary>The SQL of recurring tasks and their recorded runs on PostgreSQL; <c>coalesce(@now, now())</c> means "the caller's time, else the database clock".</summary>
internal static class RecurringSql
{
    /// <summary>Upserts static tasks from arrays in one statement.</summary>
    public const string StaticUpsert = """
        INSERT INTO keel_recurring_tasks (key, kind, args, schedule, time_zone, queue, priority, max_attempts, catch_up, catch_up_limit,
                                          static, description, created_at, updated_at)
        SELECT t.key, t.kind, t.args::json, t.schedule, t.time_zone, t.queue, t.priority, t.max_attempts, t.catch_up, t.catch_up_limit,
               true, t.description, coalesce(@now, now()), coalesce(@now, now())
        FROM unnest(@keys, @kinds, @args, @schedules, @time_zones, @queues, @priorities, @max_attempts, @catch_ups, @catch_up_limits, @descriptions)
             AS t(key, kind, args, schedule, time_zone, queue, priority, max_attempts, catch_up, catch_up_limit, description)
        ON CONFLICT (key) DO UPDATE SET
            kind = excluded.kind, args = excluded.args, schedule = excluded.schedule, time_zone = excluded.time_zone,
            queue = excluded.queue, priority = excluded.priority, max_attempts = excluded.max_attempts,
            catch_up = excluded.catch_up, catch_up_limit = excluded.catch_up_limit, static = true,
            description = excluded.description, updated_at = excluded.updated_at
        """;

    /// <summary>Deletes every static task whose key is not in <c>@keys</c>.</summary>
    public const string StaticDeleteMissing = "DELETE FROM keel_recurring_tasks WHERE static AND NOT (key = ANY(@keys))";

    /// <summary>Upserts one dynamic task; a static task with the same key is left untouched (no row affected).</summary>
    public const string DynamicUpsert = """
        INSERT INTO keel_recurring_tasks (key, kind, args, schedule, time_zone, queue, priority, max_attempts, catch_up, catch_up_limit,
                                          static, description, created_at, updated_at)
        VALUES (@key, @kind, @args::json, @schedule, @time_zone, @queue, @priority, @max_attempts, @catch_up, @catch_up_limit,
                false, @description, coalesce(@now, now()), coalesce(@now, now()))
        ON CONFLICT (key) DO UPDATE SET
            kind = excluded.kind, args = excluded.args, schedule = excluded.schedule, time_zone = excluded.time_zone,
            queue = excluded.queue, priority = excluded.priority, max_attempts = excluded.max_attempts,
            catch_up = excluded.catch_up, catch_up_limit = excluded.catch_up_limit,
            description = excluded.description, updated_at = excluded.updated_at
        WHERE NOT keel_recurring_tasks.static
        """;

    /// <summary>Deletes one dynamic task (its recorded runs stay).</summary>
    public const string DynamicDelete = "DELETE FROM keel_recurring_tasks WHERE key = @key AND NOT static";

    /// <summary>Tasks by key (all, or the one <c>@key</c>), each with its newest recorded run.</summary>
    public const string TasksList = """
        SELECT t.key, t.kind, t.args::text, t.schedule, t.time_zone, t.queue, t.priority, t.max_attempts, t.catch_up, t.catch_up_limit,
               t.static, t.description, e.run_at, e.job_id
        FROM keel_recurring_tasks t
        LEFT JOIN LATERAL (
            SELECT x.run_at, x.job_id FROM keel_recurring_executions x WHERE x.task_key = t.key ORDER BY x.run_at DESC LIMIT 1
        ) e ON true
        WHERE @key::text IS NULL OR t.key = @key
        ORDER BY t.key
        """;

    /// <summary>Records a run unless it is already recorded (a concurrent insert waits for the other to commit); returns the new id, or no row.</summary>
    public const string ExecutionInsert = """
        INSERT INTO keel_recurring_executions (task_key, run_at, job_id, created_at)
        VALUES (@task_key, @run_at, NULL, coalesce(@now, now()))
        ON CONFLICT (task_key, run_at) DO NOTHING
        RETURNING id
        """;

    /// <summary>Links a recorded run to the job it enqueued.</summary>
    public const string ExecutionLinkJob = "UPDATE keel_recurring_executions SET job_id = @job_id WHERE id = @id";
}

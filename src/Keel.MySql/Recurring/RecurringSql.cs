namespace Keel.MySql;

/// <summary>The SQL of recurring tasks and their recorded runs on MariaDB/MySQL. Times are <c>BIGINT</c> microseconds.</summary>
internal static class RecurringSql
{
    /// <summary>The task columns an upsert writes, in order.</summary>
    private const string Columns = "`key`, kind, args, schedule, time_zone, queue, priority, max_attempts, catch_up, catch_up_limit, static, description";

    /// <summary>Inserts one task or replaces the one with its key.</summary>
    public const string StaticUpsert = $"""
        INSERT INTO keel_recurring_tasks ({Columns}, created_at, updated_at)
        VALUES (@key, @kind, @args, @schedule, @time_zone, @queue, @priority, @max_attempts, @catch_up, @catch_up_limit, @static, @description, @keel_now, @keel_now)
        ON DUPLICATE KEY UPDATE
            kind = VALUES(kind), args = VALUES(args), schedule = VALUES(schedule), time_zone = VALUES(time_zone),
            queue = VALUES(queue), priority = VALUES(priority), max_attempts = VALUES(max_attempts),
            catch_up = VALUES(catch_up), catch_up_limit = VALUES(catch_up_limit), static = VALUES(static),
            description = VALUES(description), updated_at = VALUES(updated_at)
        """;

    /// <summary>Deletes every static task whose key is not one of the parameters <paramref name="keys"/> (every static task when there are none).</summary>
    /// <param name="keys">The parameter names <c>@k0, @k1, …</c>.</param>
    /// <returns>The statement.</returns>
    public static string StaticDeleteMissing(IReadOnlyList<string> keys) => keys.Count == 0
        ? "DELETE FROM keel_recurring_tasks WHERE static = 1"
        : $"DELETE FROM keel_recurring_tasks WHERE static = 1 AND `key` NOT IN ({string.Join(", ", keys)})";

    /// <summary>Locks the task with a key, if any; returns whether it is static.</summary>
    public const string TaskLock = "SELECT static FROM keel_recurring_tasks WHERE `key` = @key FOR UPDATE";

    /// <summary>Upserts one dynamic task; the caller has checked under <see cref="TaskLock"/> that no static task has the key.</summary>
    public const string DynamicUpsert = StaticUpsert;

    /// <summary>Deletes one dynamic task (its recorded runs stay).</summary>
    public const string DynamicDelete = "DELETE FROM keel_recurring_tasks WHERE `key` = @key AND static = 0";

    /// <summary>Tasks by key (all, or the one <c>@key</c>), each with its newest recorded run.</summary>
    public const string TasksList = """
        SELECT t.`key`, t.kind, t.args, t.schedule, t.time_zone, t.queue, t.priority, t.max_attempts, t.catch_up, t.catch_up_limit,
               t.static, t.description, e.run_at, e.job_id
        FROM keel_recurring_tasks t
        LEFT JOIN keel_recurring_executions e ON e.id = (
            SELECT x.id FROM keel_recurring_executions x WHERE x.task_key = t.`key` ORDER BY x.run_at DESC LIMIT 1)
        WHERE @key IS NULL OR t.`key` = @key
        ORDER BY t.`key`
        """;

    /// <summary>Records a run unless it is already recorded (the unique (task_key, run_at) key): one row affected when recorded now.</summary>
    public const string ExecutionInsert = """
        INSERT IGNORE INTO keel_recurring_executions (task_key, run_at, job_id, created_at)
        VALUES (@task_key, @run_at, NULL, @keel_now)
        """;

    /// <summary>Links a recorded run to the job it enqueued.</summary>
    public const string ExecutionLinkJob = "UPDATE keel_recurring_executions SET job_id = @job_id WHERE id = @id";
}

namespace Keel.MySql;

/// <summary>The SQL of queues on MariaDB/MySQL: their counts (<c>keel_pauses</c> and every execution table) and pauses.</summary>
internal static class QueuesSql
{
    /// <summary>
    /// Every known queue with its counts per live state, the oldest ready job's time and the pause flag, by name: one
    /// grouped pass over each execution table, plus the pauses and the jobs table's queue names (finished and discarded
    /// jobs too, until retention deletes them), read by a loose index scan of <c>keel_jobs_queue</c>.
    /// </summary>
    public const string QueuesList = """
        SELECT c.queue, CAST(sum(c.ready) AS SIGNED), CAST(sum(c.scheduled) AS SIGNED), CAST(sum(c.claimed) AS SIGNED),
               CAST(sum(c.blocked) AS SIGNED), CAST(sum(c.failed) AS SIGNED), min(c.oldest),
               EXISTS (SELECT 1 FROM keel_pauses p WHERE p.queue = c.queue), @keel_now
        FROM (
            SELECT queue, count(*) AS ready, 0 AS scheduled, 0 AS claimed, 0 AS blocked, 0 AS failed, min(created_at) AS oldest
            FROM keel_ready_executions GROUP BY queue
            UNION ALL
            SELECT queue, 0, count(*), 0, 0, 0, NULL FROM keel_scheduled_executions GROUP BY queue
            UNION ALL
            SELECT j.queue, 0, 0, count(*), 0, 0, NULL
            FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id GROUP BY j.queue
            UNION ALL
            SELECT queue, 0, 0, 0, count(*), 0, NULL FROM keel_blocked_executions GROUP BY queue
            UNION ALL
            SELECT queue, 0, 0, 0, 0, count(*), NULL FROM keel_failed_executions GROUP BY queue
            UNION ALL
            SELECT queue, 0, 0, 0, 0, 0, NULL FROM keel_pauses
            UNION ALL
            SELECT queue, 0, 0, 0, 0, 0, NULL FROM keel_jobs GROUP BY queue) c
        GROUP BY c.queue
        ORDER BY c.queue
        """;

    /// <summary>Pauses a queue (idempotent).</summary>
    public const string QueuePause = "INSERT IGNORE INTO keel_pauses (queue, created_at) VALUES (@queue, @keel_now)";

    /// <summary>Resumes a queue (idempotent).</summary>
    public const string QueueResume = "DELETE FROM keel_pauses WHERE queue = @queue";
}

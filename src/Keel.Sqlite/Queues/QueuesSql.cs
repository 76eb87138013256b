namespace Keel.Sqlite;

/// <summary>The SQL of queues on SQLite: their counts (<c>keel_pauses</c> and every execution table) and pauses.</summary>
internal static class QueuesSql
{
    /// <summary>
    /// Every known queue with its counts per live state, the oldest ready job's time and the pause flag, by name. One pass
    /// over each execution table, grouped (failed executions carry their queue since schema 4), rather than counting per
    /// queue name: with a million jobs the per-name counts walked the jobs table once per queue. Known queues: the live
    /// execution tables, the pauses, and the jobs table's queue names (finished and discarded jobs too, until retention
    /// deletes them), read by a loose index scan: one probe of keel_jobs_queue per distinct queue.
    /// </summary>
    public const string QueuesList = """
        WITH RECURSIVE known(queue) AS (
            SELECT min(queue) FROM keel_jobs
            UNION ALL
            SELECT (SELECT min(j.queue) FROM keel_jobs j WHERE j.queue > k.queue) FROM known k WHERE k.queue IS NOT NULL),
        counts AS (
            SELECT queue, count(*) AS ready, 0 AS scheduled, 0 AS claimed, 0 AS blocked, 0 AS failed, min(created_at) AS oldest
            FROM keel_ready_executions GROUP BY queue
            UNION ALL
            SELECT queue, 0, count(*), 0, 0, 0, NULL FROM keel_scheduled_executions GROUP BY queue
            UNION ALL
            SELECT (SELECT j.queue FROM keel_jobs j WHERE j.id = c.job_id) AS queue, 0, 0, count(*), 0, 0, NULL
            FROM keel_claimed_executions c GROUP BY 1
            UNION ALL
            SELECT queue, 0, 0, 0, count(*), 0, NULL FROM keel_blocked_executions GROUP BY queue
            UNION ALL
            SELECT queue, 0, 0, 0, 0, count(*), NULL FROM keel_failed_executions GROUP BY queue
            UNION ALL
            SELECT queue, 0, 0, 0, 0, 0, NULL FROM keel_pauses
            UNION ALL
            SELECT queue, 0, 0, 0, 0, 0, NULL FROM known WHERE queue IS NOT NULL)
        SELECT c.queue, sum(c.ready), sum(c.scheduled), sum(c.claimed), sum(c.blocked), sum(c.failed), min(c.oldest),
               EXISTS (SELECT 1 FROM keel_pauses p WHERE p.queue = c.queue)
        FROM counts c
        GROUP BY c.queue
        ORDER BY c.queue
        """;

    /// <summary>Pauses a queue (idempotent).</summary>
    public const string QueuePause = "INSERT OR IGNORE INTO keel_pauses (queue, created_at) VALUES (@queue, @now)";

    /// <summary>Resumes a queue (idempotent).</summary>
    public const string QueueResume = "DELETE FROM keel_pauses WHERE queue = @queue";
}

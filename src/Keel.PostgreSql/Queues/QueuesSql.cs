namespace Keel.PostgreSql;

/// <summary>The SQL of queues on PostgreSQL: their counts (<c>keel_pauses</c> and every execution table) and pauses.</summary>
internal static class QueuesSql
{
    /// <summary>
    /// Every known queue — with jobs in any state (finished and discarded ones until retention deletes them) or a
    /// pause — with counts per live state, the oldest ready job's age and the pause flag, ordered by name (byte order).
    /// Each execution table is grouped on its own (ready, scheduled and blocked carry the queue; claimed and failed join
    /// their jobs); the jobs table's queue names are read by a loose index scan, one index probe per distinct queue.
    /// </summary>
    public const string QueuesList = """
        WITH RECURSIVE known(queue) AS (
            SELECT min(queue) FROM keel_jobs
            UNION ALL
            SELECT (SELECT min(j.queue) FROM keel_jobs j WHERE j.queue > k.queue) FROM known k WHERE k.queue IS NOT NULL
        ),
        counts AS (
            SELECT queue, count(*) AS ready, 0::bigint AS scheduled, 0::bigint AS claimed, 0::bigint AS blocked,
                   0::bigint AS failed, min(created_at) AS oldest
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
            SELECT queue, 0, 0, 0, 0, 0, NULL FROM known WHERE queue IS NOT NULL
        )
        SELECT c.queue, sum(c.ready)::bigint, sum(c.scheduled)::bigint, sum(c.claimed)::bigint,
               sum(c.blocked)::bigint, sum(c.failed)::bigint,
               coalesce(@now, now()) - min(c.oldest),
               EXISTS (SELECT 1 FROM keel_pauses p WHERE p.queue = c.queue)
        FROM counts c
        GROUP BY c.queue
        ORDER BY c.queue COLLATE "C"
        """;

    /// <summary>Pauses a queue (idempotent).</summary>
    public const string QueuePause = """
        INSERT INTO keel_pauses (queue, created_at) VALUES (@queue, coalesce(@now, now()))
        ON CONFLICT (queue) DO NOTHING
        """;

    /// <summary>Resumes a queue and wakes its workers.</summary>
    public const string QueueResume = """
        WITH resumed AS (
            DELETE FROM keel_pauses WHERE queue = @queue
        )
        SELECT pg_notify('keel_jobs', @queue)
        """;
}

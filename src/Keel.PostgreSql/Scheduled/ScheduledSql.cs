namespace Keel.PostgreSql;

/// <summary>The SQL of <c>keel_scheduled_executions</c> on PostgreSQL: jobs waiting for their time.</summary>
internal static class ScheduledSql
{
    /// <summary>
    /// Locks up to a batch of due scheduled jobs, oldest first, and moves those without a concurrency key to ready.
    /// Returns (moved, notified, ids of the locked jobs with a key): the caller runs <see cref="ConcurrencySql.JobAcquire"/> for each
    /// of those in the same transaction. They come ordered by key, then dispatch order, so that concurrent
    /// dispatchers take semaphore row locks in one global order (no deadlock between them) while each key still
    /// acquires in (scheduled_at, priority, job_id) order.
    /// </summary>
    public const string ScheduledDispatch = """
        WITH due AS MATERIALIZED (
            SELECT s.job_id, s.scheduled_at, s.priority,
                   (SELECT j.concurrency_key FROM keel_jobs j WHERE j.id = s.job_id) AS concurrency_key
            FROM keel_scheduled_executions s
            WHERE s.scheduled_at <= coalesce(@now, now())
            ORDER BY s.scheduled_at, s.priority, s.job_id
            LIMIT @limit
            FOR UPDATE OF s SKIP LOCKED
        ),
        moved AS (
            DELETE FROM keel_scheduled_executions s
            USING due d
            WHERE s.job_id = d.job_id AND d.concurrency_key IS NULL
            RETURNING s.job_id, s.queue, s.priority
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT job_id, queue, priority, coalesce(@now, now())
            FROM moved
            RETURNING queue
        )
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x),
               (SELECT array_agg(job_id ORDER BY concurrency_key COLLATE "C", scheduled_at, priority, job_id)
                FROM due WHERE concurrency_key IS NOT NULL)
        """;
}

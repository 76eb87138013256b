using Keel.Storage;

namespace Keel.PostgreSql;

/// <summary>The SQL of concurrency limits on PostgreSQL: <c>keel_semaphores</c> (free permits per key) and <c>keel_blocked_executions</c> (jobs waiting for one).</summary>
internal static class ConcurrencySql
{
    /// <summary>
    /// CTEs giving permits back inside a finalizing statement, for the jobs listed by a preceding <c>gave</c>
    /// CTE (one row per job, column <c>concurrency_key</c>): locks the keys' semaphore rows in key order, then adds
    /// one permit per job, never above the limit (a double release creates none, #689). Doing this in the statement
    /// that takes the job out of ready/claimed makes the holder count and the permit count change together under the
    /// row lock, so a concurrent <see cref="SemaphoreRecount"/> can never count a permit twice; promoting blocked
    /// jobs into the permits runs after commit (<see cref="SemaphorePromote"/>).
    /// </summary>
    public const string GiveBack = """
        give AS MATERIALIZED (
            SELECT concurrency_key AS key, count(*) AS n
            FROM gave
            WHERE concurrency_key IS NOT NULL
            GROUP BY concurrency_key
        ),
        give_locked AS MATERIALIZED (
            SELECT s.key
            FROM keel_semaphores s
            WHERE s.key IN (SELECT key FROM give)
            ORDER BY s.key COLLATE "C"
            FOR UPDATE
        ),
        given AS (
            UPDATE keel_semaphores s
            SET value = least(s.limit_value, s.value + g.n), updated_at = coalesce(@now, now())
            FROM give g
            WHERE s.key = g.key AND s.key IN (SELECT key FROM give_locked)
        )
        """;

    /// <summary>
    /// Makes a job with a concurrency key ready by taking a permit of its key, reading the key, limit and duration
    /// stored with the job. The upsert takes the semaphore's row lock whether or not a permit is free (a false
    /// <c>ON CONFLICT … WHERE</c> still locks the row), so a releaser, which locks the same row before it looks for
    /// blocked jobs, sees a blocked row written here (#456). No permit: the job becomes blocked, or with
    /// <c>@discard</c> it is discarded and its uniqueness key freed. A scheduled row of the job is removed.
    /// Returns (ready, blocked, discarded, notified).
    /// </summary>
    public const string JobAcquire = """
        WITH job AS (
            SELECT id, queue, priority, concurrency_key,
                   greatest(coalesce(concurrency_limit, 1), 1) AS lim,
                   coalesce(concurrency_duration_ms, 900000) AS dur
            FROM keel_jobs
            WHERE id = @job_id AND concurrency_key IS NOT NULL
        ),
        acquired AS (
            INSERT INTO keel_semaphores AS s (key, value, limit_value, expires_at, created_at, updated_at)
            SELECT concurrency_key, lim - 1, lim, coalesce(@now, now()) + dur * interval '1 millisecond',
                   coalesce(@now, now()), coalesce(@now, now())
            FROM job
            ON CONFLICT (key) DO UPDATE
            SET value = s.value - 1, limit_value = EXCLUDED.limit_value,
                expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
            WHERE s.value > 0
            RETURNING s.value
        ),
        unscheduled AS (
            DELETE FROM keel_scheduled_executions WHERE job_id = @job_id
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM job
            WHERE EXISTS (SELECT 1 FROM acquired)
            RETURNING queue
        ),
        blocked AS (
            INSERT INTO keel_blocked_executions (job_id, queue, priority, concurrency_key, expires_at, created_at)
            SELECT id, queue, priority, concurrency_key, coalesce(@now, now()) + dur * interval '1 millisecond', coalesce(@now, now())
            FROM job
            WHERE NOT EXISTS (SELECT 1 FROM acquired) AND NOT @discard
            RETURNING job_id
        ),
        discarded AS (
            UPDATE keel_jobs j
            SET discarded_at = coalesce(@now, now())
            FROM job
            WHERE j.id = job.id AND NOT EXISTS (SELECT 1 FROM acquired) AND @discard
            RETURNING j.id
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING discarded d
            WHERE u.job_id = d.id
        )
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM blocked),
               (SELECT count(*) FROM discarded),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', queue) FROM ready) x)
        """;

    /// <summary>
    /// The first statement of a permit release or repair: locks the key's semaphore row so that the next statement
    /// (a fresh snapshot, in the same transaction) sees every blocked job committed by an enqueuer that held it.
    /// </summary>
    public const string SemaphoreLock = "SELECT value FROM keel_semaphores WHERE key = @key FOR UPDATE";

    /// <summary>
    /// Promotes blocked jobs of <c>@key</c> (by priority, then id, skipping locked ones) into the free permits
    /// computed by the head's <c>sem(key, free)</c> and <c>fallback(ms)</c> CTEs, then stores the remaining permits
    /// and a fresh expiry. Returns (promoted, notified).
    /// </summary>
    private const string PromoteTail = """

        picked AS MATERIALIZED (
            SELECT b.job_id
            FROM keel_blocked_executions b
            WHERE b.concurrency_key = @key
            ORDER BY b.priority, b.job_id
            LIMIT coalesce((SELECT greatest(free, 0) FROM sem), 0)
            FOR UPDATE SKIP LOCKED
        ),
        promoted AS (
            DELETE FROM keel_blocked_executions b
            USING picked p
            WHERE b.job_id = p.job_id
            RETURNING b.job_id, b.queue, b.priority
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT job_id, queue, priority, coalesce(@now, now())
            FROM promoted
            RETURNING job_id, queue
        ),
        updated AS (
            UPDATE keel_semaphores s
            SET value = greatest(sem.free - (SELECT count(*) FROM ready), 0),
                expires_at = coalesce(@now, now()) + coalesce(
                    (SELECT max(j.concurrency_duration_ms) FROM ready r JOIN keel_jobs j ON j.id = r.job_id),
                    (SELECT ms FROM fallback),
                    900000) * interval '1 millisecond',
                updated_at = coalesce(@now, now())
            FROM sem
            WHERE s.key = sem.key
        )
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x)
        """;

    /// <summary>
    /// Promotes blocked jobs of a key locked by <see cref="SemaphoreLock"/> into its free permits (given back by the
    /// finalizing statement, see <see cref="GiveBack"/>).
    /// </summary>
    public const string SemaphorePromote = """
        WITH sem AS (
            SELECT key, least(limit_value, value) AS free
            FROM keel_semaphores
            WHERE key = @key
        ),
        fallback AS (
            SELECT @duration_ms::bigint AS ms
        ),
        """ + PromoteTail;

    /// <summary>
    /// Maintenance, first statement: locks the key's semaphore row, creating it (no free permit yet, the limit taken
    /// from the blocked jobs) when blocked jobs wait on a key that has none.
    /// </summary>
    public const string SemaphoreEnsure = """
        INSERT INTO keel_semaphores AS s (key, value, limit_value, expires_at, created_at, updated_at)
        SELECT @key, 0,
               greatest(coalesce((SELECT max(j.concurrency_limit)
                                  FROM keel_blocked_executions b JOIN keel_jobs j ON j.id = b.job_id
                                  WHERE b.concurrency_key = @key), 1), 1),
               coalesce(@now, now()), coalesce(@now, now()), coalesce(@now, now())
        ON CONFLICT (key) DO UPDATE SET updated_at = EXCLUDED.updated_at
        """;

    /// <summary>
    /// Maintenance, second statement: recomputes a locked key's free permits from the jobs actually holding one
    /// (<see cref="JobStates.HoldsPermitCondition"/>: ready or claimed), so a lost release can neither leak nor exceed the limit, and promotes blocked jobs into them.
    /// </summary>
    public static readonly string SemaphoreRecount = $"""
        WITH holders AS (
            SELECT count(*) AS n
            FROM keel_jobs j
            WHERE j.concurrency_key = @key
              AND {JobStates.HoldsPermitCondition}
        ),
        sem AS (
            SELECT key, greatest(limit_value - (SELECT n FROM holders), 0) AS free
            FROM keel_semaphores
            WHERE key = @key
        ),
        fallback AS (
            SELECT max(j.concurrency_duration_ms) AS ms
            FROM keel_blocked_executions b JOIN keel_jobs j ON j.id = b.job_id
            WHERE b.concurrency_key = @key
        ),
        """ + PromoteTail;

    /// <summary>
    /// Maintenance, third statement: gives the key's still-blocked jobs whose wait expired a new expiry (so the next
    /// pass does not pick the key again before its semaphore expires).
    /// </summary>
    public const string BlockedRefresh = """
        UPDATE keel_blocked_executions b
        SET expires_at = coalesce(@now, now()) + coalesce(j.concurrency_duration_ms, 900000) * interval '1 millisecond'
        FROM keel_jobs j
        WHERE j.id = b.job_id AND b.concurrency_key = @key AND b.expires_at < coalesce(@now, now())
        """;

    /// <summary>
    /// Maintenance, last statement: deletes the semaphore of a key nobody holds or waits for (the recount found every
    /// permit free); the next acquire creates it again.
    /// </summary>
    public const string SemaphoreCollect = """
        DELETE FROM keel_semaphores s
        WHERE s.key = @key AND s.value >= s.limit_value
          AND NOT EXISTS (SELECT 1 FROM keel_blocked_executions b WHERE b.concurrency_key = @key)
        """;

    /// <summary>
    /// Keys maintenance repairs: an expired semaphore, blocked jobs whose wait expired, blocked jobs whose key has no
    /// semaphore, or blocked jobs whose key has a free permit (the promotion after a release's commit was lost with
    /// its connection).
    /// </summary>
    public const string ConcurrencyMaintainKeys = """
        SELECT k.key
        FROM (
            (SELECT s.key FROM keel_semaphores s
             WHERE s.expires_at < coalesce(@now, now())
             ORDER BY s.expires_at
             LIMIT @limit)
            UNION
            (SELECT DISTINCT b.concurrency_key FROM keel_blocked_executions b
             WHERE b.expires_at < coalesce(@now, now())
             LIMIT @limit)
            UNION
            (SELECT DISTINCT b.concurrency_key FROM keel_blocked_executions b
             WHERE NOT EXISTS (SELECT 1 FROM keel_semaphores s WHERE s.key = b.concurrency_key)
             LIMIT @limit)
            UNION
            (SELECT s.key FROM keel_semaphores s
             WHERE s.value > 0 AND EXISTS (SELECT 1 FROM keel_blocked_executions b WHERE b.concurrency_key = s.key)
             LIMIT @limit)
        ) k
        ORDER BY k.key
        LIMIT @limit
        """;
}

using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>
/// The SQL of concurrency limits on SQLite: <c>keel_semaphores</c> (free permits per key) and
/// <c>keel_blocked_executions</c> (jobs waiting for one). Every caller holds the write lock, so these are simple
/// reads and writes, stepped through in code. Times are Unix microseconds.
/// </summary>
internal static class ConcurrencySql
{
    /// <summary>What deciding a job's next row needs: its queue, priority and concurrency terms.</summary>
    public const string JobRouting = "SELECT queue, priority, concurrency_key, concurrency_limit, concurrency_duration_ms, workflow, batch_id FROM keel_jobs WHERE id = @job_id";

    /// <summary>A key's free permits and limit; no row when it has no semaphore.</summary>
    public const string SemaphoreSelect = "SELECT value, limit_value FROM keel_semaphores WHERE key = @key";

    /// <summary>Creates a key's semaphore.</summary>
    public const string SemaphoreInsert = """
        INSERT INTO keel_semaphores (key, value, limit_value, expires_at, created_at, updated_at)
        VALUES (@key, @value, @limit, @expires_at, @now, @now)
        """;

    /// <summary>Stores a key's free permits, limit and expiry.</summary>
    public const string SemaphoreUpdate = "UPDATE keel_semaphores SET value = @value, limit_value = @limit, expires_at = @expires_at, updated_at = @now WHERE key = @key";

    /// <summary>Takes a permit whatever is free (an operator's run now of a blocked job), never below zero.</summary>
    public const string SemaphoreTake = "UPDATE keel_semaphores SET value = max(0, value - 1), updated_at = @now WHERE key = @key";

    /// <summary>Blocks a job until a permit of its key is free.</summary>
    public const string BlockedInsert = """
        INSERT INTO keel_blocked_executions (job_id, queue, priority, concurrency_key, expires_at, created_at)
        VALUES (@job_id, @queue, @priority, @key, @expires_at, @now)
        """;

    /// <summary>Takes the next blocked job of a key (by priority, then id) out of blocked; returns (job, queue, priority).</summary>
    public const string BlockedNext = """
        DELETE FROM keel_blocked_executions WHERE job_id = (
            SELECT job_id FROM keel_blocked_executions WHERE concurrency_key = @key ORDER BY priority, job_id LIMIT 1)
        RETURNING job_id, queue, priority
        """;

    /// <summary>Takes one job out of blocked (run now); returns its key, or no row.</summary>
    public const string BlockedDelete = "DELETE FROM keel_blocked_executions WHERE job_id = @job_id RETURNING concurrency_key";

    /// <summary>Gives a key's blocked jobs a new expiry, so maintenance does not pick the key again at once.</summary>
    public const string BlockedRefresh = "UPDATE keel_blocked_executions SET expires_at = @expires_at WHERE concurrency_key = @key";

    /// <summary>
    /// Keys maintenance repairs: an expired semaphore, blocked jobs whose wait expired, or blocked jobs whose key has
    /// no semaphore.
    /// </summary>
    public const string ConcurrencyMaintainKeys = """
        SELECT key FROM keel_semaphores WHERE expires_at < @now
        UNION
        SELECT b.concurrency_key FROM keel_blocked_executions b
        WHERE b.expires_at < @now OR NOT EXISTS (SELECT 1 FROM keel_semaphores s WHERE s.key = b.concurrency_key)
        UNION
        SELECT s.key FROM keel_semaphores s
        WHERE s.value > 0 AND EXISTS (SELECT 1 FROM keel_blocked_executions b WHERE b.concurrency_key = s.key)
        LIMIT @limit
        """;

    /// <summary>How many jobs of a key hold a permit (<see cref="JobStates.HoldsPermitCondition"/>: ready or claimed), for maintenance's recount.</summary>
    public static readonly string SemaphoreHolders = $"""
        SELECT count(*) FROM keel_jobs j
        WHERE j.concurrency_key = @key
          AND {JobStates.HoldsPermitCondition}
        """;

    /// <summary>The limit and permit duration of a key, as its unfinished jobs carry them.</summary>
    public const string ConcurrencyKeyTerms = "SELECT max(concurrency_limit), max(concurrency_duration_ms) FROM keel_jobs WHERE concurrency_key = @key AND finished_at IS NULL AND discarded_at IS NULL";
}

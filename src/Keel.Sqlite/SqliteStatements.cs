namespace Keel.Sqlite;

/// <summary>Every SQL statement the SQLite store runs, one per operation step. Times are Unix microseconds.</summary>
internal static class SqliteStatements
{
    public const string ReadyInsert = "INSERT INTO keel_ready_executions (job_id, queue, priority, created_at) VALUES (@job_id, @queue, @priority, @now)";

    /// <summary>Back to ready, a suspect staying one (release, recovery).</summary>
    public const string ReadyInsertKeepSuspect = """
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
        SELECT id, queue, priority, @now, suspect FROM keel_jobs WHERE id = @job_id
        """;

    // The candidate filter is one of three fixed fragments (never user text); values are parameters. Suspects are
    // claimed apart (they run alone), through the partial index keel_ready_suspects.
    public const string ClaimFilterAll = "NOT r.suspect";
    public const string ClaimFilterExact = "NOT r.suspect AND r.queue = @queue";
    public const string ClaimFilterPrefix = "NOT r.suspect AND substr(r.queue, 1, length(@queue)) = @queue";
    public const string ClaimFilterSuspectAll = "r.suspect";
    public const string ClaimFilterSuspectExact = "r.suspect AND r.queue = @queue";
    public const string ClaimFilterSuspectPrefix = "r.suspect AND substr(r.queue, 1, length(@queue)) = @queue";

    /// <summary>Whether any job of the claim's queue selector is ready: read without the write lock.</summary>
    public const string ReadyAnyTemplate = "SELECT EXISTS (SELECT 1 FROM keel_ready_executions r WHERE {filter})";

    public const string ClaimInsertTemplate = """
        INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at)
        SELECT j.id, @process_id, j.attempts + 1, @now
        FROM keel_jobs j
        WHERE j.id IN (
            SELECT r.job_id FROM keel_ready_executions r
            WHERE {filter} AND r.queue NOT IN (SELECT p.queue FROM keel_pauses p)
            ORDER BY r.priority, r.job_id
            LIMIT @limit)
        RETURNING id, job_id, attempt
        """;

    public const string ReadyDeleteMany = "DELETE FROM keel_ready_executions WHERE job_id IN (SELECT value FROM json_each(@job_ids)) RETURNING job_id, created_at";

    public const string ClaimedJobsSelect = """
        SELECT c.id, j.id, j.kind, j.queue, j.args, j.priority, c.attempt, j.max_attempts, j.worker_losses, j.created_at, c.claimed_at,
               j.trace_parent, j.suspect
        FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id
        WHERE c.id IN (SELECT value FROM json_each(@claim_ids))
        ORDER BY j.priority, j.id
        """;

    public const string ClaimDelete = "DELETE FROM keel_claimed_executions WHERE id = @claim_id AND process_id = @process_id RETURNING job_id, attempt, claimed_at";

    public const string ClaimHeld = """
        SELECT EXISTS (
            SELECT 1 FROM keel_claimed_executions c JOIN keel_processes p ON p.id = c.process_id
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id AND p.lease_expires_at > @now)
        """;

    /// <summary>Finishes a job; returns what giving back its permit and key needs (the row stays).</summary>
    public const string JobFinish = """
        UPDATE keel_jobs SET finished_at = @now, started_at = @started_at, attempts = @attempt, finished_by = @runner, suspect = 0
        WHERE id = @job_id
        RETURNING queue, priority, concurrency_key, concurrency_limit, concurrency_duration_ms, unique_key
        """;

    /// <summary>Deletes a finished job; returns what giving back its permit needs, read before the row goes (keys go by cascade).</summary>
    public const string JobDelete = """
        DELETE FROM keel_jobs WHERE id = @job_id
        RETURNING queue, priority, concurrency_key, concurrency_limit, concurrency_duration_ms, NULL
        """;

    public const string JobAttemptUpdate = "UPDATE keel_jobs SET attempts = @attempt, scheduled_at = coalesce(@scheduled_at, scheduled_at), suspect = 0 WHERE id = @job_id RETURNING queue, priority, concurrency_key";

    public const string FailedInsert = """
        INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
        VALUES (@job_id, @exception_type, @message, @stack_trace, @attempt, @cause, @now, (SELECT queue FROM keel_jobs WHERE id = @job_id))
        """;

    public const string ClaimsDeleteAllOfProcess = "DELETE FROM keel_claimed_executions WHERE process_id = @process_id RETURNING job_id, id, attempt, claimed_at";

    public const string ClaimsDeleteSomeOfProcess = """
        DELETE FROM keel_claimed_executions
        WHERE process_id = @process_id AND id IN (SELECT value FROM json_each(@claim_ids))
        RETURNING job_id, id, attempt, claimed_at
        """;

    public const string ReadyInsertFromJobs = """
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
        SELECT id, queue, priority, @now, suspect FROM keel_jobs WHERE id IN (SELECT value FROM json_each(@job_ids))
        """;
}

namespace Keel.Sqlite;

/// <summary>
/// The SQL of the hot path on SQLite: <c>keel_ready_executions</c> (the only table workers poll),
/// <c>keel_claimed_executions</c> (a claim is a lease with an identity) and <c>keel_failed_executions</c>. A claim or a
/// completion is several statements in one <c>BEGIN IMMEDIATE</c> transaction. Times are Unix microseconds.
/// </summary>
internal static class ClaimsSql
{
    // The candidate filter is one of these fixed fragments (never user text); values are parameters. Suspects are
    // claimed apart (they run alone), through the partial index keel_ready_suspects.
    private const string FilterAll = "NOT r.suspect";
    private const string FilterExact = "NOT r.suspect AND r.queue = @queue";
    private const string FilterPrefix = "NOT r.suspect AND substr(r.queue, 1, length(@queue)) = @queue";
    private const string FilterSuspectAll = "r.suspect";
    private const string FilterSuspectExact = "r.suspect AND r.queue = @queue";
    private const string FilterSuspectPrefix = "r.suspect AND substr(r.queue, 1, length(@queue)) = @queue";

    /// <summary>The start of a look for ready jobs; a filter and a closing parenthesis follow.</summary>
    private const string ReadyAnyHead = "SELECT EXISTS (SELECT 1 FROM keel_ready_executions r WHERE ";

    /// <summary>The start of a claim; a filter and <see cref="ClaimTail"/> follow.</summary>
    private const string ClaimHead = """
        INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at)
        SELECT j.id, @process_id, j.attempts + 1, @now
        FROM keel_jobs j
        WHERE j.id IN (
            SELECT r.job_id FROM keel_ready_executions r
            WHERE
        """;

    /// <summary>The end of a claim: unpaused queues only, by priority then id, up to <c>@limit</c>.</summary>
    private const string ClaimTail = """
         AND r.queue NOT IN (SELECT p.queue FROM keel_pauses p)
            ORDER BY r.priority, r.job_id
            LIMIT @limit)
        RETURNING id, job_id, attempt
        """;

    /// <summary>Whether any job of every queue is ready: read without the write lock, so idle workers never queue for it.</summary>
    public const string ReadyAnyAll = ReadyAnyHead + FilterAll + ")";

    /// <summary>Whether any job of one queue is ready.</summary>
    public const string ReadyAnyExact = ReadyAnyHead + FilterExact + ")";

    /// <summary>Whether any job of the queues starting with a prefix is ready.</summary>
    public const string ReadyAnyPrefix = ReadyAnyHead + FilterPrefix + ")";

    /// <summary>Whether any suspect of every queue is ready.</summary>
    public const string ReadyAnySuspectAll = ReadyAnyHead + FilterSuspectAll + ")";

    /// <summary>Whether any suspect of one queue is ready.</summary>
    public const string ReadyAnySuspectExact = ReadyAnyHead + FilterSuspectExact + ")";

    /// <summary>Whether any suspect of the queues starting with a prefix is ready.</summary>
    public const string ReadyAnySuspectPrefix = ReadyAnyHead + FilterSuspectPrefix + ")";

    /// <summary>Claims from every unpaused queue; returns (claim, job, attempt). The ready rows go next.</summary>
    public const string JobsClaimAll = ClaimHead + " " + FilterAll + ClaimTail;

    /// <summary>Claims from one queue, compared literally.</summary>
    public const string JobsClaimExact = ClaimHead + " " + FilterExact + ClaimTail;

    /// <summary>Claims from queues starting with a literal prefix (no LIKE wildcards).</summary>
    public const string JobsClaimPrefix = ClaimHead + " " + FilterPrefix + ClaimTail;

    /// <summary>Claims suspects from every unpaused queue.</summary>
    public const string JobsClaimSuspectAll = ClaimHead + " " + FilterSuspectAll + ClaimTail;

    /// <summary>Claims suspects from one queue.</summary>
    public const string JobsClaimSuspectExact = ClaimHead + " " + FilterSuspectExact + ClaimTail;

    /// <summary>Claims suspects from queues starting with a literal prefix.</summary>
    public const string JobsClaimSuspectPrefix = ClaimHead + " " + FilterSuspectPrefix + ClaimTail;

    /// <summary>Deletes the ready rows of the jobs just claimed (<c>@job_ids</c>, JSON); returns when each became ready.</summary>
    public const string ReadyDeleteClaimed = "DELETE FROM keel_ready_executions WHERE job_id IN (SELECT value FROM json_each(@job_ids)) RETURNING job_id, created_at";

    /// <summary>The claims just made (<c>@claim_ids</c>, JSON) with their jobs, in claim order.</summary>
    public const string ClaimedJobs = """
        SELECT c.id, j.id, j.kind, j.queue, j.args, j.priority, c.attempt, j.max_attempts, j.worker_losses, j.created_at, c.claimed_at,
               j.trace_parent, j.suspect, j.batch_id, j.checkpoint
        FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id
        WHERE c.id IN (SELECT value FROM json_each(@claim_ids))
        ORDER BY j.priority, j.id
        """;

    /// <summary>Makes a job ready.</summary>
    public const string ReadyInsert = "INSERT INTO keel_ready_executions (job_id, queue, priority, created_at) VALUES (@job_id, @queue, @priority, @now)";

    /// <summary>Back to ready, a suspect staying one (release, recovery).</summary>
    public const string ReadyInsertKeepSuspect = """
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
        SELECT id, queue, priority, @now, suspect FROM keel_jobs WHERE id = @job_id
        """;

    /// <summary>Back to ready for the released jobs <c>@job_ids</c> (JSON), each suspect staying one.</summary>
    public const string ReadyInsertReleased = """
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
        SELECT id, queue, priority, @now, suspect FROM keel_jobs WHERE id IN (SELECT value FROM json_each(@job_ids))
        """;

    /// <summary>Deletes a claim only while the process holds it for that job (the fence of every outcome); returns (job, attempt, claimed at).</summary>
    public const string ClaimDelete = "DELETE FROM keel_claimed_executions WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id RETURNING job_id, attempt, claimed_at";

    /// <summary>Finishes a job; returns what giving back its permit and key needs (the row stays).</summary>
    public const string JobFinish = """
        UPDATE keel_jobs SET finished_at = @now, started_at = @started_at, attempts = @attempt, finished_by = @runner, suspect = 0, shared_losses = 0, checkpoint = NULL
        WHERE id = @job_id
        RETURNING queue, priority, concurrency_key, concurrency_limit, concurrency_duration_ms, unique_key, workflow, batch_id
        """;

    /// <summary>Deletes a finished job; returns what giving back its permit needs, read before the row goes (keys go by cascade).</summary>
    public const string JobDelete = """
        DELETE FROM keel_jobs WHERE id = @job_id
        RETURNING queue, priority, concurrency_key, concurrency_limit, concurrency_duration_ms, NULL, workflow, batch_id
        """;

    /// <summary>Counts a failed attempt (and its retry time, if any); returns (queue, priority, concurrency key).</summary>
    public const string JobAttemptUpdate = "UPDATE keel_jobs SET attempts = @attempt, scheduled_at = coalesce(@scheduled_at, scheduled_at), suspect = 0, shared_losses = 0, checkpoint = CASE WHEN @scheduled_at IS NULL THEN NULL ELSE checkpoint END WHERE id = @job_id RETURNING queue, priority, concurrency_key";

    /// <summary>Fails a job for good, with its last error.</summary>
    public const string FailedInsert = """
        INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
        VALUES (@job_id, @exception_type, @message, @stack_trace, @attempt, @cause, @now, (SELECT queue FROM keel_jobs WHERE id = @job_id))
        """;

    /// <summary>Takes every claim of a process (release); returns (job, claim, attempt, claimed at, cancel reason).</summary>
    public const string ClaimsDeleteAll = "DELETE FROM keel_claimed_executions WHERE process_id = @process_id RETURNING job_id, id, attempt, claimed_at, cancel_reason";

    /// <summary>Takes some claims (<c>@claim_ids</c>, JSON) of a process (release); returns (job, claim, attempt, claimed at, cancel reason).</summary>
    public const string ClaimsDeleteSome = """
        DELETE FROM keel_claimed_executions
        WHERE process_id = @process_id AND id IN (SELECT value FROM json_each(@claim_ids))
        RETURNING job_id, id, attempt, claimed_at, cancel_reason
        """;

    /// <summary>Whether a process still holds a claim under a lease that has not expired.</summary>
    public const string ClaimHeld = """
        SELECT EXISTS (
            SELECT 1 FROM keel_claimed_executions c JOIN keel_processes p ON p.id = c.process_id
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id AND p.lease_expires_at > @now)
        """;
}

namespace Keel.PostgreSql;

/// <summary>
/// Every SQL statement the PostgreSQL store runs, one named constant per operation. Values are always bound
/// as parameters; <c>coalesce(@now, now())</c> means "the caller's time, else the database clock".
/// </summary>
internal static class PostgreSqlStatements
{
    /// <summary>The advisory lock key serializing concurrent migrators ("keel" + schema, as a fixed bigint).</summary>
    public const long MigrationLockKey = 0x4B45454C_00000001;

    /// <summary>The NOTIFY channel that wakes workers when jobs become ready; the payload is the queue.</summary>
    public const string NotifyChannel = "keel_jobs";

    public const string MigrationLock = "SELECT pg_advisory_xact_lock(@key)";

    public const string MigrationTableCreate = """
        CREATE TABLE IF NOT EXISTS keel_schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """;

    public const string MigrationVersionRead = "SELECT coalesce(max(version), 0) FROM keel_schema_migrations";

    public const string MigrationRecord = "INSERT INTO keel_schema_migrations (version, name) VALUES (@version, @name)";

    public const string SchemaTableExists = "SELECT to_regclass('keel_schema_migrations') IS NOT NULL";

    /// <summary>
    /// Inserts a batch in input (ordinality) order, then routes each job to ready or scheduled, notifies the
    /// ready queues, and returns the new ids ascending (which is input order).
    /// </summary>
    public const string JobsInsert = """
        WITH input AS (
            SELECT t.queue, t.kind, t.args, t.priority, t.scheduled_at, t.max_attempts, t.max_worker_losses, t.ord
            FROM unnest(@queues, @kinds, @args, @priorities, @scheduled_ats, @max_attempts, @max_worker_losses)
                 WITH ORDINALITY AS t(queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses, ord)
        ),
        inserted AS (
            INSERT INTO keel_jobs (queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses, created_at)
            SELECT queue, kind, args::json, priority, scheduled_at, max_attempts, max_worker_losses, coalesce(@now, now())
            FROM input
            ORDER BY ord
            RETURNING id, queue, priority, scheduled_at
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM inserted
            WHERE scheduled_at IS NULL OR scheduled_at <= coalesce(@now, now())
            RETURNING queue
        ),
        scheduled AS (
            INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
            SELECT id, queue, priority, scheduled_at, coalesce(@now, now())
            FROM inserted
            WHERE scheduled_at > coalesce(@now, now())
        ),
        notified AS (
            SELECT count(*) AS n
            FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x
        )
        SELECT i.id
        FROM inserted i CROSS JOIN notified
        ORDER BY i.id
        """;

    private const string ClaimHead = """
        WITH picked AS MATERIALIZED (
            SELECT r.job_id
            FROM keel_ready_executions r
            WHERE
        """;

    private const string ClaimTail = """
              NOT EXISTS (SELECT 1 FROM keel_pauses p WHERE p.queue = r.queue)
            ORDER BY r.priority, r.job_id
            LIMIT @limit
            FOR UPDATE OF r SKIP LOCKED
        ),
        taken AS (
            DELETE FROM keel_ready_executions r
            USING picked p
            WHERE r.job_id = p.job_id
            RETURNING r.job_id
        ),
        claimed AS (
            INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at)
            SELECT j.id, @process_id, j.attempts + 1, coalesce(@now, now())
            FROM taken t
            JOIN keel_jobs j ON j.id = t.job_id
            RETURNING id, job_id, attempt, claimed_at
        )
        SELECT c.id, c.job_id, j.kind, j.queue, j.args::text, j.priority, c.attempt, j.max_attempts,
               j.worker_losses, j.created_at, c.claimed_at
        FROM claimed c
        JOIN keel_jobs j ON j.id = c.job_id
        ORDER BY j.priority, c.job_id
        """;

    /// <summary>Claims from every unpaused queue (served by the (priority, job_id) index).</summary>
    public const string JobsClaimAll = ClaimHead + "\n" + ClaimTail;

    /// <summary>Claims from one queue, compared literally.</summary>
    public const string JobsClaimExact = ClaimHead + "\n          r.queue = @queue AND\n" + ClaimTail;

    /// <summary>Claims from queues starting with a literal prefix (no LIKE wildcards).</summary>
    public const string JobsClaimPrefix = ClaimHead + "\n          starts_with(r.queue, @queue) AND\n" + ClaimTail;

    private const string CompleteHead = """
        WITH done AS (
            DELETE FROM keel_claimed_executions c
            USING unnest(@claim_ids, @job_ids) AS t(claim_id, job_id)
            WHERE c.id = t.claim_id AND c.job_id = t.job_id AND c.process_id = @process_id
            RETURNING c.id, c.job_id, c.attempt
        ),
        """;

    /// <summary>Completes held claims and keeps the jobs with <c>finished_at</c>; returns the claim ids that were held.</summary>
    public const string JobsCompletePreserve = CompleteHead + """

        finished AS (
            UPDATE keel_jobs j
            SET finished_at = coalesce(@now, now()), attempts = d.attempt
            FROM done d
            WHERE j.id = d.job_id
        )
        SELECT id FROM done
        """;

    /// <summary>Completes held claims and deletes the jobs; returns the claim ids that were held.</summary>
    public const string JobsCompleteDelete = CompleteHead + """

        removed AS (
            DELETE FROM keel_jobs j
            USING done d
            WHERE j.id = d.job_id
        )
        SELECT id FROM done
        """;

    /// <summary>
    /// Records a failed attempt under its claim, then fails the job for good (no retry time), makes it ready
    /// (retry due now) or schedules it. Returns (claims deleted, queues notified).
    /// </summary>
    public const string JobFail = """
        WITH released AS (
            DELETE FROM keel_claimed_executions
            WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id
            RETURNING job_id, attempt
        ),
        job AS (
            UPDATE keel_jobs j
            SET attempts = r.attempt, scheduled_at = coalesce(@retry_at, j.scheduled_at)
            FROM released r
            WHERE j.id = r.job_id
            RETURNING j.id, j.queue, j.priority, r.attempt
        ),
        error AS (
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT id, attempt, @exception_type, @message, @stack_trace, NULL, coalesce(@now, now())
            FROM job
        ),
        failed AS (
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at)
            SELECT id, @exception_type, @message, @stack_trace, attempt, NULL, coalesce(@now, now())
            FROM job
            WHERE @retry_at IS NULL
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM job
            WHERE @retry_at <= coalesce(@now, now())
            RETURNING queue
        ),
        scheduled AS (
            INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
            SELECT id, queue, priority, @retry_at, coalesce(@now, now())
            FROM job
            WHERE @retry_at > coalesce(@now, now())
        )
        SELECT (SELECT count(*) FROM released),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', queue) FROM ready) x)
        """;

    private const string ReleaseTail = """

            RETURNING c.job_id
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT j.id, j.queue, j.priority, coalesce(@now, now())
            FROM released r
            JOIN keel_jobs j ON j.id = r.job_id
            RETURNING queue
        )
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x)
        """;

    /// <summary>Puts every claim of a process back to ready (attempts unchanged). Returns (released, notified).</summary>
    public const string ClaimsReleaseAll = """
        WITH released AS (
            DELETE FROM keel_claimed_executions c
            WHERE c.process_id = @process_id
        """ + ReleaseTail;

    /// <summary>Puts some claims of a process back to ready (attempts unchanged). Returns (released, notified).</summary>
    public const string ClaimsReleaseSome = """
        WITH released AS (
            DELETE FROM keel_claimed_executions c
            WHERE c.process_id = @process_id AND c.id = ANY(@claim_ids)
        """ + ReleaseTail;

    /// <summary>One job with the facts that decide its state.</summary>
    public const string JobGet = """
        SELECT j.id, j.kind, j.queue, j.args::text, j.priority, j.attempts, j.max_attempts, j.worker_losses,
               j.created_at, j.scheduled_at, j.finished_at,
               EXISTS (SELECT 1 FROM keel_failed_executions f WHERE f.job_id = j.id) AS failed,
               c.process_id, c.claimed_at, c.id IS NOT NULL AS claimed,
               EXISTS (SELECT 1 FROM keel_ready_executions r WHERE r.job_id = j.id) AS ready,
               s.scheduled_at AS scheduled_for, s.job_id IS NOT NULL AS scheduled,
               EXISTS (SELECT 1 FROM keel_blocked_executions b WHERE b.job_id = j.id) AS blocked
        FROM keel_jobs j
        LEFT JOIN keel_claimed_executions c ON c.job_id = j.id
        LEFT JOIN keel_scheduled_executions s ON s.job_id = j.id
        WHERE j.id = @job_id
        """;

    /// <summary>A job's error history, oldest first.</summary>
    public const string JobErrors = """
        SELECT attempt, exception_type, message, stack_trace, occurred_at
        FROM keel_job_errors
        WHERE job_id = @job_id
        ORDER BY id
        """;

    /// <summary>Moves due scheduled jobs to ready, oldest first. Returns (moved, notified).</summary>
    public const string ScheduledDispatch = """
        WITH due AS MATERIALIZED (
            SELECT job_id
            FROM keel_scheduled_executions
            WHERE scheduled_at <= coalesce(@now, now())
            ORDER BY scheduled_at, priority, job_id
            LIMIT @limit
            FOR UPDATE SKIP LOCKED
        ),
        moved AS (
            DELETE FROM keel_scheduled_executions s
            USING due d
            WHERE s.job_id = d.job_id
            RETURNING s.job_id, s.queue, s.priority
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT job_id, queue, priority, coalesce(@now, now())
            FROM moved
            RETURNING queue
        )
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x)
        """;

    public const string ProcessRegister = """
        INSERT INTO keel_processes (name, kind, pid, hostname, started_at, supervisor_id, last_heartbeat_at, metadata, created_at)
        VALUES (@name, @kind, @pid, @hostname, @started_at, @supervisor_id, coalesce(@now, now()), @metadata::json, coalesce(@now, now()))
        RETURNING id
        """;

    public const string ProcessHeartbeat = "UPDATE keel_processes SET last_heartbeat_at = coalesce(@now, now()) WHERE id = @process_id";

    /// <summary>
    /// The first key of every process's session lock, "KEEL". Process locks use the two-int4 form
    /// <c>pg_advisory_lock(int, int)</c>, a key space PostgreSQL keeps apart from the single-bigint form
    /// (<see cref="MigrationLockKey"/>); the second key is the process id's low 32 bits.
    /// </summary>
    public const int SessionLockNamespace = 0x4B45454C;

    /// <summary>
    /// Takes a new process's session lock, inside its registration transaction on its dedicated connection.
    /// Never waits: false means another session holds the key (a colliding id), and the registration retries
    /// with a new row so that every committed row is covered by its own lock.
    /// </summary>
    public const string ProcessSessionLock = "SELECT pg_try_advisory_lock(@namespace, @key)";

    /// <summary>
    /// A heartbeat on a dedicated connection that does not hold its session lock (it reconnected): re-takes the
    /// lock only when the row still exists (RETURNING runs for an updated row only). No row means the process
    /// was pruned; false means another session holds the key for now, so the next heartbeat tries again.
    /// </summary>
    public const string ProcessHeartbeatRelock = """
        UPDATE keel_processes SET last_heartbeat_at = coalesce(@now, now())
        WHERE id = @process_id
        RETURNING pg_try_advisory_lock(@namespace, @key)
        """;

    /// <summary>Releases whatever session locks a dedicated connection holds (only its process's) before it is closed.</summary>
    public const string ProcessSessionUnlock = "SELECT pg_advisory_unlock_all()";

    /// <summary>
    /// Of the candidates whose row remains, those whose session lock can be taken: their session is gone (a
    /// deregistered process has no row, and a registration not yet committed is not visible). Each lock this takes is
    /// released by the same statement (the CASE guarantees unlock runs exactly for the locks taken), so the pooled
    /// session never keeps one. Nothing is probed while the server has been up for less than
    /// <c>@minimum_uptime</c> (a one-time filter, evaluated before any lock is tried).
    /// </summary>
    public const string ProcessesSessionEnded = """
        WITH probe AS MATERIALIZED (
            SELECT c.id, c.key, pg_try_advisory_lock(@namespace, c.key) AS taken
            FROM unnest(@process_ids, @keys) AS c(id, key)
            WHERE now() - pg_postmaster_start_time() >= @minimum_uptime
              AND EXISTS (SELECT 1 FROM keel_processes p WHERE p.id = c.id)
        )
        SELECT id
        FROM probe
        WHERE CASE WHEN taken THEN pg_advisory_unlock(@namespace, key) ELSE false END
        ORDER BY id
        """;

    /// <summary>Runs after <see cref="ClaimsReleaseAll"/> (or <see cref="ProcessRecoverClaims"/>) in the same transaction.</summary>
    public const string ProcessDelete = "DELETE FROM keel_processes WHERE id = @process_id";

    /// <summary>
    /// Processes with their heartbeat age and claim count, by id; only those older than <c>@stale_after</c>
    /// when it is not null.
    /// </summary>
    public const string ProcessesList = """
        SELECT p.id, p.name, p.kind, p.pid, p.hostname, p.started_at, p.supervisor_id, p.last_heartbeat_at,
               coalesce(@now, now()) - p.last_heartbeat_at AS heartbeat_age, p.metadata::text,
               (SELECT count(*) FROM keel_claimed_executions c WHERE c.process_id = p.id) AS claims
        FROM keel_processes p
        WHERE @stale_after::interval IS NULL OR p.last_heartbeat_at < coalesce(@now, now()) - @stale_after
        ORDER BY p.id
        """;

    /// <summary>
    /// Locks a process row for pruning, skipping it when another pruner (or a heartbeat) holds it, and
    /// re-checks staleness under the lock. No row means: do not prune.
    /// </summary>
    public const string ProcessRecoverLock = """
        SELECT id
        FROM keel_processes
        WHERE id = @process_id
          AND (@stale_after::interval IS NULL OR last_heartbeat_at < coalesce(@now, now()) - @stale_after)
        FOR UPDATE SKIP LOCKED
        """;

    /// <summary>
    /// Recovers every claim of a locked process with each job's worker-lost policy: the lost run counts as an
    /// attempt and a loss, an error naming the cause is recorded, and the job goes back to ready or, when its
    /// losses exceed <c>max_worker_losses</c> or its attempts are spent, to failed. Returns (retried, failed,
    /// notified). Runs after <see cref="ProcessRecoverLock"/> and before <see cref="ProcessDelete"/>.
    /// </summary>
    public const string ProcessRecoverClaims = """
        WITH lost AS (
            DELETE FROM keel_claimed_executions
            WHERE process_id = @process_id
            RETURNING job_id, attempt
        ),
        upd AS (
            UPDATE keel_jobs j
            SET attempts = l.attempt, worker_losses = j.worker_losses + 1
            FROM lost l
            WHERE j.id = l.job_id
            RETURNING j.id, j.queue, j.priority, l.attempt,
                      (j.worker_losses > j.max_worker_losses OR l.attempt >= j.max_attempts) AS give_up
        ),
        error AS (
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT id, attempt, @exception_type, @message, NULL, @cause, coalesce(@now, now())
            FROM upd
        ),
        failed AS (
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at)
            SELECT id, @exception_type, @message, NULL, attempt, @cause, coalesce(@now, now())
            FROM upd
            WHERE give_up
            RETURNING job_id
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM upd
            WHERE NOT give_up
            RETURNING queue
        )
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM failed),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x)
        """;

    /// <summary>
    /// Claims with their jobs and owners, oldest first, optionally of one process and/or of owners whose
    /// heartbeat is older than <c>@stale_after</c>.
    /// </summary>
    public const string ClaimsList = """
        SELECT c.id, c.job_id, j.kind, j.queue, c.attempt, c.claimed_at, coalesce(@now, now()) - c.claimed_at AS claim_age,
               p.id, p.name, p.hostname, p.pid, coalesce(@now, now()) - p.last_heartbeat_at AS heartbeat_age
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        JOIN keel_processes p ON p.id = c.process_id
        WHERE (@process_id::bigint IS NULL OR c.process_id = @process_id)
          AND (@stale_after::interval IS NULL OR p.last_heartbeat_at < coalesce(@now, now()) - @stale_after)
        ORDER BY c.claimed_at, c.id
        LIMIT @limit
        """;

    /// <summary>
    /// Puts chosen claims back to ready whatever their owner (attempts and losses unchanged). Returns
    /// (released, notified).
    /// </summary>
    public const string ClaimsRecoverRelease = """
        WITH released AS (
            DELETE FROM keel_claimed_executions c
            WHERE c.id = ANY(@claim_ids)
        """ + ReleaseTail;

    /// <summary>
    /// Fails chosen claims whatever their owner: the run counts as an attempt, and an error and a failed
    /// execution name the cause. Returns the number failed.
    /// </summary>
    public const string ClaimsRecoverFail = """
        WITH lost AS (
            DELETE FROM keel_claimed_executions
            WHERE id = ANY(@claim_ids)
            RETURNING job_id, attempt
        ),
        upd AS (
            UPDATE keel_jobs j
            SET attempts = l.attempt
            FROM lost l
            WHERE j.id = l.job_id
            RETURNING j.id, l.attempt
        ),
        error AS (
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT id, attempt, @exception_type, @message, NULL, @cause, coalesce(@now, now())
            FROM upd
        ),
        failed AS (
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at)
            SELECT id, @exception_type, @message, NULL, attempt, @cause, coalesce(@now, now())
            FROM upd
            RETURNING job_id
        )
        SELECT count(*) FROM failed
        """;
}

namespace Keel.PostgreSql;

/// <summary>The SQL of the hot path on PostgreSQL: <c>keel_ready_executions</c> (the only table workers poll), <c>keel_claimed_executions</c> (a claim is a lease with an identity) and <c>keel_failed_executions</c>; every operation is one statement. <c>coalesce(@now, now())</c> means "the caller's time, else the database clock".</summary>
internal static class ClaimsSql
{
    /// <summary>The NOTIFY channel that wakes workers when jobs become ready; the payload is the queue.</summary>
    public const string NotifyChannel = "keel_jobs";

    /// <summary>Subscribes a dedicated connection to <see cref="NotifyChannel"/>.</summary>
    public const string Listen = "LISTEN " + NotifyChannel;

    /// <summary>Ends <see cref="Listen"/> before the connection goes back to the pool.</summary>
    public const string Unlisten = "UNLISTEN " + NotifyChannel;

    /// <summary>
    /// The first statement of every hot-path batch: the claim and completion statements run on their cached generic
    /// plans, for this batch's transaction only (see <c>HotPathBatch</c>).
    /// </summary>
    public const string HotPathGenericPlan = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";

    /// <summary>The start of a claim of jobs that are not suspects; a queue filter and <see cref="ClaimTail"/> follow.</summary>
    private const string ClaimHead = """
        WITH picked AS MATERIALIZED (
            SELECT r.job_id
            FROM keel_ready_executions r
            WHERE NOT r.suspect AND
        """;

    /// <summary>A claim of suspects only, served by the partial index <c>keel_ready_suspects</c>.</summary>
    private const string ClaimSuspectHead = """
        WITH picked AS MATERIALIZED (
            SELECT r.job_id
            FROM keel_ready_executions r
            WHERE r.suspect AND
        """;

    /// <summary>The rest of a claim: unpaused queues only, lock, take the ready rows, read the jobs, insert the claims.</summary>
    private const string ClaimTail = """
              -- The paused queues are read once (an init plan), not probed per row: with a per-row NOT EXISTS the
              -- planner sorted the whole backlog on every claim instead of walking the poll index (5x slower at 100k).
              -- The coalesce (a no-op: the array is never null) hides the filter from the row estimate: once
              -- keel_pauses was analyzed empty, the planner estimated that one ready row passes `<> ALL`, and sorted
              -- a sequential scan of the whole backlog again on every claim.
              coalesce(r.queue <> ALL (ARRAY(SELECT p.queue FROM keel_pauses p)), true)
            ORDER BY r.priority, r.job_id
            LIMIT @limit
            FOR UPDATE OF r SKIP LOCKED
        ),
        -- Rows are taken and jobs read by primary key through an array of ids, which keeps the planner on the index
        -- whatever its estimates (and in the cached generic plan): joins against the CTEs let it pick hash joins over
        -- sequential scans of keel_ready_executions and keel_jobs (4x slower at 20,000 jobs).
        taken AS MATERIALIZED (
            DELETE FROM keel_ready_executions r
            WHERE r.job_id = ANY (ARRAY(SELECT p.job_id FROM picked p))
            RETURNING r.job_id, r.created_at
        ),
        jobs AS MATERIALIZED (
            SELECT j.id, j.kind, j.queue, j.args, j.priority, j.attempts, j.max_attempts, j.worker_losses, j.created_at, j.trace_parent, j.suspect, j.batch_id,
                   j.checkpoint
            FROM keel_jobs j
            WHERE j.id = ANY (ARRAY(SELECT t.job_id FROM taken t))
        ),
        claimed AS (
            INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at)
            SELECT j.id, @process_id, j.attempts + 1, coalesce(@now, now())
            FROM jobs j
            RETURNING id, job_id, attempt, claimed_at
        )
        SELECT c.id, c.job_id, j.kind, j.queue, j.args::text, j.priority, c.attempt, j.max_attempts,
               j.worker_losses, j.created_at, c.claimed_at, t.created_at, j.trace_parent, j.suspect, j.batch_id, j.checkpoint
        FROM claimed c
        JOIN jobs j ON j.id = c.job_id
        JOIN taken t ON t.job_id = c.job_id
        ORDER BY j.priority, c.job_id
        """;

    /// <summary>Claims from every unpaused queue (served by the (priority, job_id) index).</summary>
    public const string JobsClaimAll = ClaimHead + "\n" + ClaimTail;

    /// <summary>Claims from one queue, compared literally.</summary>
    public const string JobsClaimExact = ClaimHead + "\n          r.queue = @queue AND\n" + ClaimTail;

    /// <summary>Claims from queues starting with a literal prefix (no LIKE wildcards).</summary>
    public const string JobsClaimPrefix = ClaimHead + "\n          starts_with(r.queue, @queue) AND\n" + ClaimTail;

    /// <summary>Claims suspects from every unpaused queue.</summary>
    public const string JobsClaimSuspectAll = ClaimSuspectHead + "\n" + ClaimTail;

    /// <summary>Claims suspects from one queue.</summary>
    public const string JobsClaimSuspectExact = ClaimSuspectHead + "\n          r.queue = @queue AND\n" + ClaimTail;

    /// <summary>Claims suspects from queues starting with a literal prefix.</summary>
    public const string JobsClaimSuspectPrefix = ClaimSuspectHead + "\n          starts_with(r.queue, @queue) AND\n" + ClaimTail;

    /// <summary>
    /// The start of a completion: deletes the claims still held by the process (the fence: claim, job and process must
    /// all match), returning them. Each (claim, job) pair is looked up by index, one probe per pair (the lateral
    /// subquery's <c>OFFSET 0</c> keeps it from being flattened into a join), and the claims are deleted by primary key
    /// through an array. A completion also reads its result from the job-side CTE alone, which returns the claim id.
    /// Both avoid joins whose plan was left to the estimates: on the cached generic plan, the pairs were compared with
    /// every claim of the process and the deleted claims with every finished job — quadratic in the batch (`EXPLAIN
    /// ANALYZE`: 9.6 ms for 200 claims and 104 ms for 1,000; now 2.1 and 12 ms).
    /// </summary>
    private const string CompleteHead = """
        WITH done AS (
            DELETE FROM keel_claimed_executions c
            WHERE c.process_id = @process_id AND c.id = ANY (ARRAY(
                SELECT h.id
                FROM unnest(@claim_ids, @job_ids) AS t(claim_id, job_id),
                     LATERAL (SELECT k.id FROM keel_claimed_executions k
                              WHERE k.id = t.claim_id AND k.job_id = t.job_id AND k.process_id = @process_id OFFSET 0) h))
            RETURNING c.id, c.job_id, c.attempt, c.claimed_at
        ),
        """;

    /// <summary>
    /// Completes held claims and keeps the jobs with <c>finished_at</c>, freeing their uniqueness keys and giving
    /// their permits back (<see cref="ConcurrencySql.GiveBack"/>); returns the claim ids that were held, each with its job's
    /// concurrency key and permit duration (null when unlimited) so the caller can promote blocked jobs after commit.
    /// </summary>
    public static readonly string JobsCompletePreserve = CompleteHead + """

        finished AS (
            UPDATE keel_jobs j
            SET finished_at = coalesce(@now, now()), started_at = d.claimed_at, attempts = d.attempt, finished_by = @runner, checkpoint = NULL,
                suspect = false, shared_losses = 0
            FROM done d
            WHERE j.id = d.job_id
            RETURNING d.id AS claim_id, j.id, j.concurrency_key, j.concurrency_duration_ms, j.workflow, j.batch_id
        ),
        gave AS (
            SELECT concurrency_key FROM finished
        ),
        """ + CountInBatches("finished") + ConcurrencySql.GiveBack + "," + """
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING done d
            WHERE u.job_id = d.job_id
        )
        SELECT f.claim_id, f.concurrency_key, f.concurrency_duration_ms, f.id, f.workflow, f.batch_id,
               CASE WHEN NOT @workflow_here AND (f.workflow IS NOT NULL OR EXISTS (SELECT 1 FROM counted k WHERE k.id = f.batch_id AND k.pending = 0)) THEN keel_workflow_needed() END
        FROM finished f
        """;

    /// <summary>
    /// Completes held claims and deletes the jobs (their uniqueness keys go by cascade), giving their permits back
    /// (<see cref="ConcurrencySql.GiveBack"/>); returns the claim ids that were held, each with its job's concurrency key and permit
    /// duration (null when unlimited) so the caller can promote blocked jobs after commit.
    /// </summary>
    public static readonly string JobsCompleteDelete = CompleteHead + """

        removed AS (
            DELETE FROM keel_jobs j
            USING done d
            WHERE j.id = d.job_id
            RETURNING d.id AS claim_id, j.id, j.concurrency_key, j.concurrency_duration_ms, j.workflow, j.batch_id
        ),
        gave AS (
            SELECT concurrency_key FROM removed
        ),
        """ + CountInBatches("removed") + ConcurrencySql.GiveBack + """

        SELECT r.claim_id, r.concurrency_key, r.concurrency_duration_ms, r.id, r.workflow, r.batch_id,
               CASE WHEN NOT @workflow_here AND (r.workflow IS NOT NULL OR EXISTS (SELECT 1 FROM counted k WHERE k.id = r.batch_id AND k.pending = 0)) THEN keel_workflow_needed() END
        FROM removed r
        """;

    /// <summary>
    /// The batch counts of a fast-path completion, in the same statement: each batch of the finished jobs loses them from
    /// <c>pending</c> and gains them in <c>succeeded</c>, one update per batch. A batch that reaches zero pending (its
    /// callbacks are due) or a job with dependents makes the statement raise (<c>keel_workflow_needed()</c>), so it
    /// rolls back whole and runs again in a transaction with the workflow steps; with <c>@workflow_here</c> (that run)
    /// nothing is counted here.
    /// </summary>
    /// <param name="finished">The CTE of the finished jobs (id, workflow, batch_id).</param>
    private static string CountInBatches(string finished) => $"""
        counted AS (
            UPDATE keel_batches b
            SET pending = b.pending - x.n, succeeded = b.succeeded + x.n
            FROM (SELECT batch_id, count(*) AS n FROM {finished} WHERE batch_id IS NOT NULL AND workflow IS NULL AND NOT @workflow_here GROUP BY batch_id) x
            WHERE b.id = x.batch_id
            RETURNING b.id, b.pending
        ),
        """;

    /// <summary>
    /// Records a failed attempt under its claim, then fails the job for good (no retry time, freeing its uniqueness
    /// key), makes it ready (retry due now, unlimited jobs only) or schedules it (a job with a concurrency key always
    /// goes through scheduled, so the dispatcher acquires a permit again); either way a job with a key gives its
    /// permit back. A claim whose run was asked to stop (<c>cancel_reason</c>) ends the job cancelled instead (discarded,
    /// never retried). Returns (claims deleted, queues notified, concurrency key, permit duration, whether a job that
    /// failed for good or was cancelled is in a workflow, whether it was cancelled): the caller settles its workflow in
    /// the same transaction and promotes blocked jobs of the key after commit.
    /// </summary>
    public const string JobFail = """
        WITH released AS (
            DELETE FROM keel_claimed_executions
            WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id
            RETURNING id, job_id, attempt, claimed_at, cancel_reason
        ),
        job AS (
            UPDATE keel_jobs j
            SET attempts = r.attempt, scheduled_at = coalesce(@retry_at, j.scheduled_at), suspect = false, shared_losses = 0,
                checkpoint = CASE WHEN @retry_at IS NULL OR r.cancel_reason IS NOT NULL THEN NULL ELSE j.checkpoint END,
                discarded_at = CASE WHEN r.cancel_reason IS NOT NULL THEN coalesce(@now, now()) ELSE j.discarded_at END
            FROM released r
            WHERE j.id = r.job_id
            RETURNING j.id, j.queue, j.priority, r.attempt, j.concurrency_key, j.concurrency_duration_ms, j.workflow, j.batch_id, r.cancel_reason IS NOT NULL AS cancelled
        ),
        error AS (
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT id, attempt, @exception_type, @message, @stack_trace, NULL, coalesce(@now, now())
            FROM job
        ),
        run AS (
            INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail)
            SELECT r.job_id, r.attempt, r.id, @runner, r.claimed_at, coalesce(@now, now()),
                   CASE WHEN r.cancel_reason IS NULL THEN 'failed' ELSE 'cancelled' END,
                   CASE WHEN r.cancel_reason IS NOT NULL THEN 'honoured' WHEN @retry_at IS NULL THEN 'failed-for-good' ELSE 'retry-scheduled' END,
                   r.cancel_reason IS NULL,
                   CASE WHEN r.cancel_reason IS NULL THEN @exception_type || ': ' || @message
                        ELSE r.cancel_reason || ' (its run failed first: ' || @exception_type || ': ' || @message || ')' END
            FROM released r
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING job
            WHERE u.job_id = job.id AND (@retry_at IS NULL OR job.cancelled)
        ),
        gave AS (
            SELECT concurrency_key FROM job
        ),
        """ + ConcurrencySql.GiveBack + "," + """
        failed AS (
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
            SELECT id, @exception_type, @message, @stack_trace, attempt, NULL, coalesce(@now, now()), queue
            FROM job
            WHERE @retry_at IS NULL AND NOT job.cancelled
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM job
            WHERE @retry_at <= coalesce(@now, now()) AND concurrency_key IS NULL AND NOT cancelled
            RETURNING queue
        ),
        scheduled AS (
            INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
            SELECT id, queue, priority, @retry_at, coalesce(@now, now())
            FROM job
            WHERE (@retry_at > coalesce(@now, now()) OR (@retry_at IS NOT NULL AND concurrency_key IS NOT NULL)) AND NOT cancelled
        )
        SELECT (SELECT count(*) FROM released),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', queue) FROM ready) x),
               (SELECT concurrency_key FROM job),
               (SELECT concurrency_duration_ms FROM job),
               (SELECT workflow IS NOT NULL OR batch_id IS NOT NULL FROM job WHERE @retry_at IS NULL OR cancelled),
               (SELECT cancelled FROM job)
        """;

    /// <summary>
    /// The rest of a release, after a <c>released</c> CTE deleting claims: back to ready, run history, NOTIFY. A claim whose
    /// run was asked to stop (<c>cancel_reason</c>) does not go back: its job is discarded as cancelled, its key freed and
    /// its permit given back. Returns (released, notified, concurrency keys of the cancelled jobs, their durations, the
    /// cancelled jobs in a workflow, which the caller settles as discarded in the same transaction).
    /// </summary>
    public const string ReleaseTail = """

            RETURNING c.id, c.job_id, c.attempt, c.claimed_at, c.cancel_reason
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
            SELECT j.id, j.queue, j.priority, coalesce(@now, now()), j.suspect
            FROM released r
            JOIN keel_jobs j ON j.id = r.job_id
            WHERE r.cancel_reason IS NULL
            RETURNING queue
        ),
        run AS (
            INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail)
            SELECT r.job_id, r.attempt, r.id, @runner, r.claimed_at, coalesce(@now, now()),
                   CASE WHEN r.cancel_reason IS NULL THEN @outcome ELSE 'cancelled' END,
                   CASE WHEN r.cancel_reason IS NULL THEN @cause ELSE 'honoured' END, false,
                   CASE WHEN r.cancel_reason IS NULL THEN @detail ELSE r.cancel_reason || ' (released: ' || coalesce(@detail, 'its worker let go of it') || ')' END
            FROM released r
            WHERE @outcome IS NOT NULL OR r.cancel_reason IS NOT NULL
        ),
        cancelled AS (
            UPDATE keel_jobs j
            SET discarded_at = coalesce(@now, now()), suspect = false, shared_losses = 0, checkpoint = NULL
            FROM released r
            WHERE j.id = r.job_id AND r.cancel_reason IS NOT NULL
            RETURNING j.id, j.concurrency_key, j.concurrency_duration_ms, j.workflow, j.batch_id
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING cancelled
            WHERE u.job_id = cancelled.id
        ),
        gave AS (
            SELECT concurrency_key FROM cancelled
        ),
        """ + ConcurrencySql.GiveBack + """
        SELECT (SELECT count(*) FROM ready),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x),
               (SELECT array_agg(concurrency_key ORDER BY id) FROM cancelled WHERE concurrency_key IS NOT NULL),
               (SELECT array_agg(coalesce(concurrency_duration_ms, 0) ORDER BY id) FROM cancelled WHERE concurrency_key IS NOT NULL),
               (SELECT array_agg(id ORDER BY id) FROM cancelled WHERE workflow IS NOT NULL OR batch_id IS NOT NULL)
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

    /// <summary>Whether a process still holds a claim under a lease that has not expired.</summary>
    public const string ClaimHeld = """
        SELECT EXISTS (
            SELECT 1
            FROM keel_claimed_executions c
            JOIN keel_processes p ON p.id = c.process_id
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id
              AND p.lease_expires_at > coalesce(@now, now()))
        """;
}

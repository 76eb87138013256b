using System.Collections.Frozen;
using Keel.Storage;

namespace Keel.PostgreSql;

/// <summary>
/// The SQL of operators and the dashboard on PostgreSQL: job lists and counts, bulk retry and discard, run now,
/// retention and vacuum, claims. <c>coalesce(@now, now())</c> means "the caller's time, else the database clock".
/// </summary>
internal static class AdminSql
{
    /// <summary>Selection by ids or by queue and kind, for the execution row <c>x</c> joined with its job <c>j</c>.</summary>
    private const string SelectionFilter = """
        (@job_ids::bigint[] IS NULL OR x.job_id = ANY(@job_ids))
                  AND (@queue::text IS NULL OR j.queue = @queue)
                  AND (@kind::text IS NULL OR j.kind = @kind)
        """;

    /// <summary>The failure filter, for a failed execution <c>x</c>.</summary>
    private const string FailureFilter = """
        (@exception_type::text IS NULL OR x.exception_type = @exception_type)
                  AND (@failed_after::timestamptz IS NULL OR x.created_at >= @failed_after)
                  AND (@failed_before::timestamptz IS NULL OR x.created_at < @failed_before)
        """;

    /// <summary>For states that have no failure: the failure filter must be unset.</summary>
    private const string NoFailureFilter = """
        @exception_type::text IS NULL AND @failed_after::timestamptz IS NULL AND @failed_before::timestamptz IS NULL
        """;

    /// <summary>
    /// Retries up to a batch of failed jobs, oldest failure first, skipping failed rows locked by another caller:
    /// deletes the failed execution, resets attempts and worker losses (the error history stays), takes the
    /// uniqueness key again when it is free, and makes unlimited jobs ready. Returns (retried, notified, ids of the
    /// retried jobs with a concurrency key, ordered by key and then oldest failure, as in <see cref="ScheduledSql.ScheduledDispatch"/>):
    /// the caller runs <see cref="ConcurrencySql.JobAcquire"/> for each in the same transaction.
    /// </summary>
    public const string JobsRetry = """
        WITH picked AS MATERIALIZED (
            SELECT x.job_id, x.created_at
            FROM keel_failed_executions x
            JOIN keel_jobs j ON j.id = x.job_id
            WHERE
        """ + SelectionFilter + "\n          AND " + FailureFilter + """

            ORDER BY x.created_at, x.job_id
            LIMIT @batch
            FOR UPDATE OF x SKIP LOCKED
        ),
        gone AS (
            DELETE FROM keel_failed_executions f
            USING picked p
            WHERE f.job_id = p.job_id
            RETURNING f.job_id
        ),
        reset AS (
            UPDATE keel_jobs j
            SET attempts = 0, worker_losses = 0, suspect = false, shared_losses = 0
            FROM gone g
            WHERE j.id = g.job_id
            RETURNING j.id, j.queue, j.priority, j.concurrency_key, j.unique_key, j.batch_id
        ),
        rekeyed AS (
            INSERT INTO keel_unique_keys (key, job_id)
            SELECT unique_key, id FROM reset WHERE unique_key IS NOT NULL ORDER BY id
            ON CONFLICT DO NOTHING
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM reset
            WHERE concurrency_key IS NULL
            RETURNING queue
        )
        SELECT (SELECT count(*) FROM reset),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x),
               (SELECT array_agg(r.id ORDER BY r.concurrency_key COLLATE "C", p.created_at, r.id)
                FROM reset r JOIN picked p ON p.job_id = r.id
                WHERE r.concurrency_key IS NOT NULL),
               (SELECT array_agg(batch_id) FROM reset WHERE batch_id IS NOT NULL)
        """;

    /// <summary>
    /// Discards up to a batch of jobs (lowest ids first) in the allowed states (<c>@ready</c>, <c>@scheduled</c>, … one
    /// flag per <see cref="JobStates.Discardable"/> state), locking their execution rows with
    /// SKIP LOCKED (a row being claimed or dispatched is left alone): deletes the execution row, sets
    /// <c>discarded_at</c>, frees the uniqueness key, gives back the permits of discarded READY jobs (only those held
    /// one). Returns (discarded, concurrency keys of those ready jobs, their permit durations) — the caller promotes
    /// blocked jobs of those keys after commit.
    /// </summary>
    public static readonly string JobsDiscard = $"""
        WITH {string.Join(",\n", JobStates.Discardable.Select(DiscardPick))},
        picked AS MATERIALIZED (
            SELECT job_id, state
            FROM ({string.Join(" UNION ALL ", JobStates.Discardable.Select(h => "SELECT * FROM " + h.Alias))}) u
            ORDER BY job_id
            LIMIT @batch
        ),
        {string.Join(",\n", JobStates.Discardable.Select(DiscardDelete))},
        gone AS (
            {string.Join("\n    UNION ALL ", JobStates.Discardable.Select(h => $"SELECT job_id, {(h.HoldsPermit ? "true" : "false")} AS held, {(h.State == JobState.Failed ? "true" : "false")} AS was_failed FROM del_{h.Alias}"))}
        ),
        upd AS (
            UPDATE keel_jobs j
            SET discarded_at = coalesce(@now, now())
            FROM gone g
            WHERE j.id = g.job_id
            RETURNING j.id, j.concurrency_key, j.concurrency_duration_ms, g.held, g.was_failed, j.workflow, j.batch_id
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING gone g
            WHERE u.job_id = g.job_id
        ),
        gave AS (
            SELECT concurrency_key FROM upd WHERE held
        ),
        {ConcurrencySql.GiveBack}
        SELECT (SELECT count(*) FROM upd),
               (SELECT array_agg(concurrency_key ORDER BY id) FROM upd WHERE held AND concurrency_key IS NOT NULL),
               (SELECT array_agg(coalesce(concurrency_duration_ms, 0) ORDER BY id) FROM upd WHERE held AND concurrency_key IS NOT NULL),
               (SELECT array_agg(id ORDER BY id) FROM upd WHERE (workflow IS NOT NULL AND NOT was_failed) OR batch_id IS NOT NULL),
               (SELECT array_agg(batch_id ORDER BY id) FROM upd WHERE was_failed AND batch_id IS NOT NULL),
               (SELECT array_agg(id ORDER BY id) FROM upd WHERE was_failed)
        """;

    /// <summary>
    /// Runs a job now: a scheduled job without a concurrency key, or any blocked job (bypassing its limit: the
    /// semaphore is not consulted), becomes ready. Returns (was scheduled, was blocked, has a concurrency key,
    /// notified): a scheduled job with a key still needs <see cref="ConcurrencySql.JobAcquire"/> in the same transaction.
    /// </summary>
    public const string JobRunNow = """
        WITH sched AS (
            DELETE FROM keel_scheduled_executions WHERE job_id = @job_id RETURNING job_id
        ),
        blk AS (
            DELETE FROM keel_blocked_executions WHERE job_id = @job_id RETURNING job_id
        ),
        job AS (
            SELECT j.id, j.queue, j.priority, j.concurrency_key,
                   EXISTS (SELECT 1 FROM sched) AS was_scheduled,
                   EXISTS (SELECT 1 FROM blk) AS was_blocked
            FROM keel_jobs j
            WHERE j.id = @job_id
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM job
            WHERE was_blocked OR (was_scheduled AND concurrency_key IS NULL)
            RETURNING queue
        )
        SELECT coalesce((SELECT was_scheduled FROM job), false),
               coalesce((SELECT was_blocked FROM job), false),
               coalesce((SELECT concurrency_key IS NOT NULL FROM job), false),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', queue) FROM ready) x)
        """;

    /// <summary>
    /// Deletes up to a batch of jobs finished or discarded before the cutoff, skipping locked rows; their
    /// executions, errors and uniqueness keys go by cascade (recurring executions have no foreign key and stay).
    /// </summary>
    public const string JobsClearFinished = """
        DELETE FROM keel_jobs
        WHERE id IN (
            SELECT id
            FROM keel_jobs
            WHERE finished_at < coalesce(@now, now()) - @older_than
               OR discarded_at < coalesce(@now, now()) - @older_than
            LIMIT @batch
            FOR UPDATE SKIP LOCKED
        )
        """;

    /// <summary>The hot execution tables with at least @threshold dead rows (statistics lag by up to a second).</summary>
    public const string HotTablesDead = """
        SELECT relname::text
        FROM pg_stat_user_tables
        WHERE schemaname = current_schema()
          AND relname IN ('keel_ready_executions', 'keel_claimed_executions')
          AND n_dead_tup >= @threshold
        ORDER BY relname
        """;

    /// <summary>Vacuums the ready table, skipping it when another session holds a lock on it.</summary>
    public const string ReadyVacuum = "VACUUM (SKIP_LOCKED) keel_ready_executions";

    /// <summary>Vacuums the claims table, skipping it when another session holds a lock on it.</summary>
    public const string ClaimedVacuum = "VACUUM (SKIP_LOCKED) keel_claimed_executions";

    /// <summary>
    /// Claims with their jobs and owners, oldest first, optionally of one process and/or of owners whose
    /// heartbeat is older than <c>@stale_after</c>.
    /// </summary>
    public const string ClaimsList = """
        SELECT c.id, c.job_id, j.kind, j.queue, c.attempt, c.claimed_at, coalesce(@now, now()) - c.claimed_at AS claim_age,
               p.id, p.name, p.hostname, p.pid, coalesce(@now, now()) - p.last_heartbeat_at AS heartbeat_age,
               p.lease_expires_at - coalesce(@now, now()) AS lease_remaining, c.progress, c.progress_message, coalesce(c.cancel_reason, c.cancel_resume_reason)
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
        """ + ClaimsSql.ReleaseTail;

    /// <summary>
    /// Fails chosen claims whatever their owner: the run counts as an attempt, an error and a failed execution
    /// name the cause, the uniqueness keys go and the permits are given back. Returns (failed, concurrency keys of
    /// the failed jobs, their permit durations) — the caller promotes blocked jobs of those keys after commit.
    /// </summary>
    public const string ClaimsRecoverFail = """
        WITH lost AS (
            DELETE FROM keel_claimed_executions
            WHERE id = ANY(@claim_ids)
            RETURNING id, job_id, attempt, claimed_at, process_id
        ),
        upd AS (
            UPDATE keel_jobs j
            SET attempts = l.attempt
            FROM lost l
            WHERE j.id = l.job_id
            RETURNING j.id, j.queue, l.attempt, j.concurrency_key, j.concurrency_duration_ms, j.workflow, j.batch_id
        ),
        run AS (
            INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail)
            SELECT l.job_id, l.attempt, l.id,
                   (SELECT json_build_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname)::text
                    FROM keel_processes p WHERE p.id = l.process_id),
                   l.claimed_at, coalesce(@now, now()), 'failed', @cause, true, @message
            FROM lost l
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING upd
            WHERE u.job_id = upd.id
        ),
        gave AS (
            SELECT concurrency_key FROM upd
        ),
        """ + ConcurrencySql.GiveBack + "," + """
        error AS (
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT id, attempt, @exception_type, @message, NULL, @cause, coalesce(@now, now())
            FROM upd
        ),
        failed AS (
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
            SELECT id, @exception_type, @message, NULL, attempt, @cause, coalesce(@now, now()), queue
            FROM upd
            RETURNING job_id
        )
        SELECT (SELECT count(*) FROM failed),
               (SELECT array_agg(concurrency_key ORDER BY id) FROM upd WHERE concurrency_key IS NOT NULL),
               (SELECT array_agg(coalesce(concurrency_duration_ms, 0) ORDER BY id) FROM upd WHERE concurrency_key IS NOT NULL),
               (SELECT array_agg(id ORDER BY id) FROM upd WHERE (workflow IS NOT NULL OR batch_id IS NOT NULL))
        """;

    /// <summary>A page of jobs in any state, newest first (by id), filtered by queue, kind, error and time (built from <see cref="JobStates"/>).</summary>
    public static readonly string JobsList = JobStates.ListSelect(null);

    /// <summary>A page of one state's jobs, newest first: a short backwards walk of that state's own table (built from <see cref="JobStates"/>).</summary>
    public static readonly FrozenDictionary<JobState, string> JobsListOfState = JobStates.All.ToFrozenDictionary(h => h.State, h => JobStates.ListSelect(h.State));

    /// <summary>The jobs per state, in the order of <see cref="JobStates.All"/>, each count stopping at <c>@limit</c> (built from <see cref="JobStates"/>).</summary>
    public static readonly string JobsCount = JobStates.CountSelect;

    /// <summary>
    /// Jobs finished (<c>f</c>, with the mean queue latency in seconds) and errors (<c>e</c>) per bucket of the window,
    /// read through the finished-time and error-time indexes. date_part (double precision), not extract (numeric since
    /// PostgreSQL 14): a third of the time over an hour's rows.
    /// </summary>
    public const string JobsActivity = """
        SELECT 'f', floor(date_part('epoch', finished_at - @since) / @bucket)::int AS bucket, count(*),
               avg(CASE WHEN started_at IS NULL THEN NULL
                        ELSE greatest(0, date_part('epoch', started_at - greatest(created_at, coalesce(scheduled_at, created_at)))) END)
        FROM keel_jobs
        WHERE finished_at >= @since AND finished_at < @until
        GROUP BY bucket
        UNION ALL
        SELECT 'e', floor(date_part('epoch', occurred_at - @since) / @bucket)::int AS bucket, count(*), NULL
        FROM keel_job_errors
        WHERE occurred_at >= @since AND occurred_at < @until
        GROUP BY bucket
        """;

    /// <summary>The discard's pick of one state: its execution rows in the selection, locked, lowest ids first.</summary>
    private static string DiscardPick(JobStateHome home) => $"""
        {home.Alias} AS MATERIALIZED (
            SELECT x.job_id, '{home.State}'::text AS state
            FROM {home.Table} x JOIN keel_jobs j ON j.id = x.job_id
            WHERE @{home.Key} AND
        {SelectionFilter}
              AND {(home.CarriesError ? FailureFilter : NoFailureFilter)}
            ORDER BY x.job_id LIMIT @batch
            FOR UPDATE OF x SKIP LOCKED
        )
        """;

    /// <summary>The discard's delete of the picked jobs' execution rows of one state.</summary>
    private static string DiscardDelete(JobStateHome home) => $"""
        del_{home.Alias} AS (
            DELETE FROM {home.Table} x USING picked p
            WHERE x.job_id = p.job_id AND p.state = '{home.State}'
            RETURNING x.job_id
        )
        """;
}

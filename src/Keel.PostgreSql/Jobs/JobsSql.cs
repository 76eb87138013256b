using Keel.Storage;

namespace Keel.PostgreSql;

/// <summary>The SQL of <c>keel_jobs</c> on PostgreSQL: inserts with their uniqueness keys, reads with their history; <c>coalesce(@now, now())</c> means "the caller's time, else the database clock".</summary>
internal static class JobsSql
{
    /// <summary>
    /// Inserts a batch in input (ordinality) order, then routes each job to ready or scheduled, notifies the
    /// ready queues, and returns the new ids ascending (which is input order).
    /// </summary>
    public const string JobsInsert = """
        WITH input AS (
            SELECT t.queue, t.kind, t.args, t.priority, t.scheduled_at, t.max_attempts, t.max_worker_losses, t.trace_parent, t.ord
            FROM unnest(@queues, @kinds, @args, @priorities, @scheduled_ats, @max_attempts, @max_worker_losses, @trace_parents)
                 WITH ORDINALITY AS t(queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses, trace_parent, ord)
        ),
        inserted AS (
            INSERT INTO keel_jobs (queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses, trace_parent, batch_id, created_at)
            SELECT queue, kind, args::json, priority, scheduled_at, max_attempts, max_worker_losses, trace_parent, @batch_id, coalesce(@now, now())
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

    /// <summary>
    /// Inserts one job of a call that uses concurrency or uniqueness keys (inside the call's transaction). When its
    /// uniqueness key is taken the job is not inserted; otherwise it is inserted and tries to take its key
    /// (<c>ON CONFLICT DO NOTHING</c> waits for a concurrent enqueue of the same key to finish). A job without a
    /// concurrency key becomes ready when due; a job not yet due becomes scheduled (it acquires when dispatched); a
    /// due job with a concurrency key gets no execution row here: the caller runs <see cref="ConcurrencySql.JobAcquire"/> once its
    /// uniqueness is settled. Returns (existing job id, new job id, whether the key was taken, needs acquire, notified).
    /// </summary>
    public const string JobInsertOne = """
        WITH existing AS (
            SELECT job_id FROM keel_unique_keys WHERE key = @unique_key
        ),
        job AS (
            INSERT INTO keel_jobs (queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses,
                                   concurrency_key, concurrency_limit, concurrency_duration_ms, unique_key, trace_parent, batch_id, created_at)
            SELECT @queue, @kind, @args::json, @priority, @scheduled_at, @max_attempts, @max_worker_losses,
                   @concurrency_key, @concurrency_limit, @concurrency_duration_ms, @unique_key, @trace_parent, @batch_id, coalesce(@now, now())
            WHERE NOT EXISTS (SELECT 1 FROM existing)
            RETURNING id, queue, priority, scheduled_at, concurrency_key,
                      (scheduled_at IS NULL OR scheduled_at <= coalesce(@now, now())) AS due
        ),
        owned AS (
            INSERT INTO keel_unique_keys (key, job_id)
            SELECT @unique_key, id FROM job WHERE @unique_key::text IS NOT NULL
            ON CONFLICT (key) DO NOTHING
            RETURNING job_id
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
            SELECT id, queue, priority, coalesce(@now, now())
            FROM job
            WHERE due AND concurrency_key IS NULL
            RETURNING queue
        ),
        scheduled AS (
            INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
            SELECT id, queue, priority, scheduled_at, coalesce(@now, now())
            FROM job
            WHERE NOT due
        )
        SELECT (SELECT job_id FROM existing),
               (SELECT id FROM job),
               EXISTS (SELECT 1 FROM owned),
               coalesce((SELECT due AND concurrency_key IS NOT NULL FROM job), false),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', queue) FROM ready) x)
        """;

    /// <summary>
    /// After <see cref="JobInsertOne"/> lost its uniqueness key to a concurrent enqueue: when the winner still holds
    /// the key, deletes the job just inserted (its execution rows go by cascade); when the key was freed meanwhile,
    /// tries to take it again. Returns (winner's job id, whether the key was taken now).
    /// </summary>
    public const string JobUniqueResolve = """
        WITH winner AS (
            SELECT job_id FROM keel_unique_keys WHERE key = @unique_key
        ),
        dropped AS (
            DELETE FROM keel_jobs
            WHERE id = @job_id AND EXISTS (SELECT 1 FROM winner)
        ),
        retaken AS (
            INSERT INTO keel_unique_keys (key, job_id)
            SELECT @unique_key, @job_id
            WHERE NOT EXISTS (SELECT 1 FROM winner)
            ON CONFLICT (key) DO NOTHING
            RETURNING job_id
        )
        SELECT (SELECT job_id FROM winner), EXISTS (SELECT 1 FROM retaken)
        """;

    /// <summary>
    /// One job with its state (<see cref="JobStates.StateOf"/>) and what its execution row adds: the claim (id,
    /// attempt, process, runner), the due time of a scheduled job.
    /// </summary>
    public static readonly string JobGet = $"""
        SELECT j.id, j.kind, j.queue, j.args::text, j.priority, j.attempts, j.max_attempts, j.worker_losses, j.created_at,
               coalesce(s.scheduled_at, j.scheduled_at), j.finished_at, j.discarded_at, j.concurrency_key, j.unique_key,
               {JobStates.StateOf},
               c.process_id, c.claimed_at, c.id, c.attempt,
               (SELECT json_build_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname)::text FROM keel_processes p WHERE p.id = c.process_id),
               j.suspect, j.started_at, j.finished_by, j.shared_losses, c.progress, c.progress_message, coalesce(c.cancel_reason, c.cancel_resume_reason), j.result, j.batch_id
        FROM keel_jobs j
        {JobStates.Joins}
        WHERE j.id = @job_id
        """;

    /// <summary>A job's error history, oldest first.</summary>
    public const string JobErrors = """
        SELECT attempt, exception_type, message, stack_trace, occurred_at, cause
        FROM keel_job_errors
        WHERE job_id = @job_id
        ORDER BY id
        """;

    /// <summary>A job's runs that did not finish it, oldest first.</summary>
    public const string JobRuns = """
        SELECT attempt, outcome, cause, charged, runner, started_at, ended_at, detail, shared_with, claim_id
        FROM keel_job_runs
        WHERE job_id = @job_id
        ORDER BY id
        """;

    /// <summary>Adds a run to a job's history (a rejected late result, an abandoned run), if the job still exists.</summary>
    public const string RunRecord = """
        INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail)
        SELECT j.id, @attempt, @claim_id, @runner, @started_at, coalesce(@now, now()), @outcome, @cause, false, @detail
        FROM keel_jobs j
        WHERE j.id = @job_id
        """;

    /// <summary>A job's log lines (<see cref="Keel.Storage.StorageRows.ReadLogLine"/>), oldest first.</summary>
    public const string JobLogs = "SELECT attempt, logged_at, level, message FROM keel_job_logs WHERE job_id = @job_id ORDER BY id";
}

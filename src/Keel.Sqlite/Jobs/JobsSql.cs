using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>The SQL of <c>keel_jobs</c> on SQLite: inserts with their uniqueness keys, reads with their history. Times are Unix microseconds.</summary>
internal static class JobsSql
{
    /// <summary>Inserts one job; returns its id (its execution row is written next, by where it goes).</summary>
    public const string JobInsert = """
        INSERT INTO keel_jobs (queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses, unique_key,
                               concurrency_key, concurrency_limit, concurrency_duration_ms, trace_parent, batch_id, created_at)
        VALUES (@queue, @kind, @args, @priority, @scheduled_at, @max_attempts, @max_worker_losses, @unique_key,
                @concurrency_key, @concurrency_limit, @concurrency_duration_ms, @trace_parent, @batch_id, @now)
        RETURNING id
        """;

    /// <summary>The job holding a uniqueness key, if any.</summary>
    public const string UniqueKeyOwner = "SELECT job_id FROM keel_unique_keys WHERE key = @key";

    /// <summary>Gives a job its uniqueness key (nothing when another job holds it).</summary>
    public const string UniqueKeyTake = "INSERT OR IGNORE INTO keel_unique_keys (key, job_id) VALUES (@key, @job_id)";

    /// <summary>Frees the uniqueness key a job holds.</summary>
    public const string UniqueKeyFree = "DELETE FROM keel_unique_keys WHERE job_id = @job_id";

    /// <summary>Marks a job discarded (its execution row goes separately).</summary>
    public const string JobDiscard = "UPDATE keel_jobs SET discarded_at = @now WHERE id = @job_id";

    /// <summary>
    /// One job with its state (<see cref="JobStates.StateOf"/>) and what its execution row adds: the claim (id,
    /// attempt, process, runner), the due time of a scheduled job.
    /// </summary>
    public static readonly string JobGet = $"""
        SELECT j.id, j.kind, j.queue, j.args, j.priority, j.attempts, j.max_attempts, j.worker_losses, j.created_at,
               coalesce(s.scheduled_at, j.scheduled_at), j.finished_at, j.discarded_at, j.concurrency_key, j.unique_key,
               {JobStates.StateOf},
               c.process_id, c.claimed_at, c.id, c.attempt,
               (SELECT json_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname) FROM keel_processes p WHERE p.id = c.process_id),
               j.suspect, j.started_at, j.finished_by, j.shared_losses, c.progress, c.progress_message, coalesce(c.cancel_reason, c.cancel_resume_reason), j.result, j.batch_id
        FROM keel_jobs j
        {JobStates.Joins}
        WHERE j.id = @job_id
        """;

    /// <summary>A job's error history, oldest first.</summary>
    public const string JobErrors = """
        SELECT attempt, exception_type, message, stack_trace, occurred_at, cause
        FROM keel_job_errors WHERE job_id = @job_id ORDER BY id
        """;

    /// <summary>A job's runs that did not finish it, oldest first.</summary>
    public const string JobRuns = """
        SELECT attempt, outcome, cause, charged, runner, started_at, ended_at, detail, shared_with, claim_id
        FROM keel_job_runs WHERE job_id = @job_id ORDER BY id
        """;

    /// <summary>Adds an error to a job's history.</summary>
    public const string JobErrorInsert = """
        INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
        VALUES (@job_id, @attempt, @exception_type, @message, @stack_trace, @cause, @now)
        """;

    /// <summary>Adds a run to a job's history (a run that did not finish its job), if the job still exists.</summary>
    public const string RunRecord = """
        INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail, shared_with)
        SELECT id, @attempt, @claim_id, @runner, @started_at, @now, @outcome, @cause, @charged, @detail, @shared_with
        FROM keel_jobs WHERE id = @job_id
        """;

    /// <summary>A job's log lines (<see cref="Keel.Storage.StorageRows.ReadLogLine"/>), oldest first.</summary>
    public const string JobLogs = "SELECT attempt, logged_at, level, message FROM keel_job_logs WHERE job_id = @job_id ORDER BY id";
}

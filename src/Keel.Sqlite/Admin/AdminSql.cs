using System.Collections.Frozen;
using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>The SQL of operators and the dashboard on SQLite: job lists and counts, bulk retry and discard, run now, retention, claims. Times are Unix microseconds.</summary>
internal static class AdminSql
{
    /// <summary>Selection by ids, or by queue and kind, for an execution row <c>x</c> joined with its job <c>j</c>.</summary>
    private const string SelectionFilter = """
        (@ids IS NULL OR x.job_id IN (SELECT value FROM json_each(@ids)))
              AND (@queue IS NULL OR j.queue = @queue)
              AND (@kind IS NULL OR j.kind = @kind)
        """;

    /// <summary>The failure filter, for a failed execution <c>x</c>.</summary>
    private const string FailureFilter = """
        (@exception_type IS NULL OR x.exception_type = @exception_type)
              AND (@failed_after IS NULL OR x.created_at >= @failed_after)
              AND (@failed_before IS NULL OR x.created_at < @failed_before)
        """;

    /// <summary>For states that have no failure: the failure filter must be unset.</summary>
    private const string NoFailureFilter = "@exception_type IS NULL AND @failed_after IS NULL AND @failed_before IS NULL";

    /// <summary>Deletes a retried job's failed execution.</summary>
    public const string FailedDelete = "DELETE FROM keel_failed_executions WHERE job_id = @job_id";

    /// <summary>Up to <c>@limit</c> failed jobs of a selection, oldest failure first: what a retry takes.</summary>
    public const string JobsRetryPick = $"""
        SELECT x.job_id
        FROM keel_failed_executions x JOIN keel_jobs j ON j.id = x.job_id
        WHERE {SelectionFilter}
          AND {FailureFilter}
        ORDER BY x.created_at, x.job_id
        LIMIT @limit
        """;

    /// <summary>Starts a retried job over (attempts, worker losses; the error history stays); returns its uniqueness key.</summary>
    public const string JobRetryReset = "UPDATE keel_jobs SET attempts = 0, worker_losses = 0, suspect = 0, shared_losses = 0 WHERE id = @job_id RETURNING unique_key";

    /// <summary>
    /// Up to <c>@limit</c> jobs of a selection in the allowed states (<c>@ready</c>, <c>@scheduled</c>, … one flag per
    /// <see cref="JobStates.Discardable"/> state), lowest ids first, with their state: a walk of each allowed state's
    /// own table.
    /// </summary>
    public static readonly string JobsDiscardPick = $"""
        SELECT job_id, state FROM (
            {string.Join("\n    UNION ALL\n    ", JobStates.Discardable.Select(DiscardPick))})
        ORDER BY job_id
        LIMIT @limit
        """;

    /// <summary>Per discardable state: deletes a discarded job's execution row from that state's table.</summary>
    public static readonly FrozenDictionary<JobState, string> ExecutionDelete =
        JobStates.Discardable.ToFrozenDictionary(h => h.State, h => $"DELETE FROM {h.Table} WHERE job_id = @job_id");

    /// <summary>Deletes up to <c>@limit</c> jobs finished or discarded before <c>@cutoff</c>; their rows in other tables go by cascade.</summary>
    public const string JobsClearFinished = """
        DELETE FROM keel_jobs WHERE id IN (
            SELECT id FROM (
                SELECT id FROM keel_jobs WHERE finished_at < @cutoff
                UNION ALL
                SELECT id FROM keel_jobs WHERE discarded_at < @cutoff)
            LIMIT @limit)
        """;

    /// <summary>Claims with their jobs and owners, oldest first, optionally of one process and/or of owners whose heartbeat is older than <c>@stale_before</c>.</summary>
    public const string ClaimsList = """
        SELECT c.id, c.job_id, j.kind, j.queue, c.attempt, c.claimed_at, p.id, p.name, p.hostname, p.pid, p.last_heartbeat_at,
               p.lease_expires_at, c.progress, c.progress_message, coalesce(c.cancel_reason, c.cancel_resume_reason)
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        JOIN keel_processes p ON p.id = c.process_id
        WHERE (@process_id IS NULL OR c.process_id = @process_id)
          AND (@stale_before IS NULL OR p.last_heartbeat_at < @stale_before)
        ORDER BY c.claimed_at, c.id
        LIMIT @limit
        """;

    /// <summary>Takes chosen claims (<c>@claim_ids</c>, JSON) whatever their owner; returns (job, attempt, claim, claimed at, runner JSON, cancel reason).</summary>
    public const string ClaimsRecoverDelete = """
        DELETE FROM keel_claimed_executions WHERE id IN (SELECT value FROM json_each(@claim_ids))
        RETURNING job_id, attempt, id, claimed_at, (SELECT json_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname) FROM keel_processes p WHERE p.id = process_id),
                  cancel_reason
        """;

    /// <summary>Counts the attempt of a claim an operator failed; returns (queue, priority).</summary>
    public const string JobSetAttempt = "UPDATE keel_jobs SET attempts = @attempt WHERE id = @job_id RETURNING queue, priority";

    /// <summary>A page of jobs in any state, newest first (by id), filtered by queue, kind, error and time (built from <see cref="JobStates"/>).</summary>
    public static readonly string JobsList = JobStates.ListSelect(null);

    /// <summary>A page of one state's jobs, newest first: a short backwards walk of that state's own table (built from <see cref="JobStates"/>).</summary>
    public static readonly FrozenDictionary<JobState, string> JobsListOfState = JobStates.All.ToFrozenDictionary(h => h.State, h => JobStates.ListSelect(h.State));

    /// <summary>The jobs per state, in the order of <see cref="JobStates.All"/>, each count stopping at <c>@limit</c> (built from <see cref="JobStates"/>).</summary>
    public static readonly string JobsCount = JobStates.CountSelect;

    /// <summary>
    /// Jobs finished (<c>f</c>, with the mean queue latency in microseconds) and errors (<c>e</c>) per bucket of the
    /// window, read through the finished-time and error-time indexes.
    /// </summary>
    public const string JobsActivity = """
        SELECT 'f', (finished_at - @since) / @bucket AS bucket, count(*),
               avg(CASE WHEN started_at IS NULL THEN NULL ELSE max(0, started_at - max(created_at, coalesce(scheduled_at, created_at))) END)
        FROM keel_jobs
        WHERE finished_at >= @since AND finished_at < @until
        GROUP BY bucket
        UNION ALL
        SELECT 'e', (occurred_at - @since) / @bucket AS bucket, count(*), NULL
        FROM keel_job_errors
        WHERE occurred_at >= @since AND occurred_at < @until
        GROUP BY bucket
        """;

    /// <summary>The discard's pick of one state: its execution rows in the selection, lowest ids first.</summary>
    private static string DiscardPick(JobStateHome home) => $"""
        SELECT * FROM (
                SELECT x.job_id, '{home.State}' AS state
                FROM {home.Table} x JOIN keel_jobs j ON j.id = x.job_id
                WHERE @{home.Key} AND {SelectionFilter}
                  AND {(home.CarriesError ? FailureFilter : NoFailureFilter)}
                ORDER BY x.job_id
                LIMIT @limit)
        """;
}

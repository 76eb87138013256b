using System.Collections.Frozen;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>The SQL of operators and the dashboard on MariaDB/MySQL: job lists and counts, bulk retry and discard, run now, retention, claims. Times are <c>BIGINT</c> microseconds.</summary>
internal static class AdminSql
{
    /// <summary>The failure filter, for a failed execution <c>x</c>.</summary>
    private const string FailureFilter = """
        (@exception_type IS NULL OR x.exception_type = @exception_type)
              AND (@failed_after IS NULL OR x.created_at >= @failed_after)
              AND (@failed_before IS NULL OR x.created_at < @failed_before)
        """;

    /// <summary>For states that have no failure: the failure filter must be unset.</summary>
    private const string NoFailureFilter = "@exception_type IS NULL AND @failed_after IS NULL AND @failed_before IS NULL";

    /// <summary>Takes a retried job's failed execution; no row affected when it is no longer failed.</summary>
    public const string FailedDelete = "DELETE FROM keel_failed_executions WHERE job_id = @job_id";

    /// <summary>Up to <c>@limit</c> failed jobs of a selection, oldest failure first: what a retry takes.</summary>
    /// <param name="ids">The chosen job ids, or null to select by the filter.</param>
    /// <returns>The statement.</returns>
    public static string JobsRetryPick(string? ids) => $"""
        SELECT x.job_id
        FROM keel_failed_executions x JOIN keel_jobs j ON j.id = x.job_id
        WHERE {SelectionFilter(ids)}
          AND {FailureFilter}
        ORDER BY x.created_at, x.job_id
        LIMIT @limit
        """;

    /// <summary>Starts a retried job over (attempts, worker losses; the error history stays) and returns its uniqueness key.</summary>
    public const string JobRetryReset = """
        UPDATE keel_jobs SET attempts = 0, worker_losses = 0, suspect = 0, shared_losses = 0 WHERE id = @job_id;
        SELECT unique_key FROM keel_jobs WHERE id = @job_id
        """;

    /// <summary>
    /// Up to <c>@limit</c> jobs of a selection in the allowed states (<c>@ready</c>, <c>@scheduled</c>, … one flag per
    /// <see cref="JobStates.Discardable"/> state), lowest ids first, with their state: a walk of each allowed state's
    /// own table.
    /// </summary>
    /// <param name="ids">The chosen job ids, or null to select by the filter.</param>
    /// <returns>The statement.</returns>
    public static string JobsDiscardPick(string? ids) => $"""
        SELECT job_id, state FROM (
            {string.Join("\n    UNION ALL\n    ", JobStates.Discardable.Select(h => DiscardPick(h, ids)))}) picked
        ORDER BY job_id
        LIMIT @limit
        """;

    /// <summary>Per discardable state: takes a discarded job's execution row from that state's table (no row affected: it moved on meanwhile).</summary>
    public static readonly FrozenDictionary<JobState, string> ExecutionDelete =
        JobStates.Discardable.ToFrozenDictionary(h => h.State, h => $"DELETE FROM {h.Table} WHERE job_id = @job_id");

    /// <summary>Up to <c>@limit</c> jobs finished or discarded before <c>@cutoff</c>.</summary>
    public const string JobsClearFinishedPick = """
        SELECT id FROM (
            (SELECT id FROM keel_jobs WHERE finished_at < @cutoff ORDER BY finished_at LIMIT @limit)
            UNION ALL
            (SELECT id FROM keel_jobs WHERE discarded_at < @cutoff ORDER BY discarded_at LIMIT @limit)) old
        LIMIT @limit
        """;

    /// <summary>Deletes the picked old jobs <paramref name="ids"/> (still finished or discarded); their rows in other tables go by cascade.</summary>
    /// <param name="ids">The picked job ids.</param>
    /// <returns>The statements.</returns>
    public static string JobsClearFinished(IEnumerable<long> ids)
        => ConnectionSql.Each(ids, id => $"DELETE FROM keel_jobs WHERE id = {id} AND (finished_at < @cutoff OR discarded_at < @cutoff)");

    /// <summary>Claims with their jobs and owners, oldest first, optionally of one process and/or of owners whose heartbeat is older than <c>@stale_after</c> (microseconds).</summary>
    public const string ClaimsList = """
        SELECT c.id, c.job_id, j.kind, j.queue, c.attempt, c.claimed_at, p.id, p.name, p.hostname, p.pid, p.last_heartbeat_at,
               p.lease_expires_at, @keel_now, c.progress, c.progress_message, coalesce(c.cancel_reason, c.cancel_resume_reason)
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        JOIN keel_processes p ON p.id = c.process_id
        WHERE (@process_id IS NULL OR c.process_id = @process_id)
          AND (@stale_after IS NULL OR p.last_heartbeat_at < @keel_now - @stale_after)
        ORDER BY c.claimed_at, c.id
        LIMIT @limit
        """;

    /// <summary>
    /// Takes chosen claims <paramref name="claimIds"/> whatever their owner: locks and returns them (job, attempt, claim,
    /// claimed at, runner JSON), one result per claim, then deletes them.
    /// </summary>
    /// <param name="claimIds">The claims.</param>
    /// <returns>The statements.</returns>
    public static string ClaimsRecoverDelete(IReadOnlyCollection<long> claimIds) => ConnectionSql.Each(claimIds, id => $"""
        SELECT c.job_id, c.attempt, c.id, c.claimed_at,
               (SELECT JSON_OBJECT('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname) FROM keel_processes p WHERE p.id = c.process_id),
               c.cancel_reason
        FROM keel_claimed_executions c WHERE c.id = {id} FOR UPDATE
        """) + ConnectionSql.Each(claimIds, id => $"DELETE FROM keel_claimed_executions WHERE id = {id}");

    /// <summary>Counts the attempt of a claim an operator failed.</summary>
    public const string JobSetAttempt = "UPDATE keel_jobs SET attempts = @attempt WHERE id = @job_id";

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
        SELECT 'f', (finished_at - @since) DIV @bucket AS bucket, count(*),
               CAST(avg(CASE WHEN started_at IS NULL THEN NULL
                             ELSE GREATEST(0, started_at - GREATEST(created_at, coalesce(scheduled_at, created_at))) END) AS DOUBLE)
        FROM keel_jobs
        WHERE finished_at >= @since AND finished_at < @until
        GROUP BY bucket
        UNION ALL
        SELECT 'e', (occurred_at - @since) DIV @bucket AS bucket, count(*), NULL
        FROM keel_job_errors
        WHERE occurred_at >= @since AND occurred_at < @until
        GROUP BY bucket
        """;

    /// <summary>Selection by ids (a literal list), or by queue and kind, for an execution row <c>x</c> joined with its job <c>j</c>.</summary>
    private static string SelectionFilter(string? ids) => $"""
        {(ids is null ? "TRUE" : $"x.job_id IN ({ids})")}
              AND (@queue IS NULL OR j.queue = @queue)
              AND (@kind IS NULL OR j.kind = @kind)
        """;

    /// <summary>The discard's pick of one state: its execution rows in the selection, lowest ids first.</summary>
    private static string DiscardPick(JobStateHome home, string? ids) => $"""
        (SELECT x.job_id, '{home.State}' AS state
                FROM {home.Table} x JOIN keel_jobs j ON j.id = x.job_id
                WHERE @{home.Key} AND {SelectionFilter(ids)}
                  AND {(home.CarriesError ? FailureFilter : NoFailureFilter)}
                ORDER BY x.job_id
                LIMIT @limit)
        """;
}

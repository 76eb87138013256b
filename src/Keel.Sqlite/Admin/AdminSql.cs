namespace Keel.Sqlite;

/// <summary>The SQL of operators and the dashboard on SQLite: job lists and counts, bulk retry and discard, run now, retention, claims. Times are Unix microseconds.</summary>
internal static class AdminSql
{
    /// <summary>Selection by ids or by queue, kind and failure, for a job <c>j</c> and its failed execution <c>f</c>.</summary>
    private const string SelectionFilter = """
        (@ids IS NULL OR j.id IN (SELECT value FROM json_each(@ids)))
        AND (@queue IS NULL OR j.queue = @queue)
        AND (@kind IS NULL OR j.kind = @kind)
        AND (@exception_type IS NULL OR f.exception_type = @exception_type)
        AND (@failed_after IS NULL OR f.created_at >= @failed_after)
        AND (@failed_before IS NULL OR f.created_at < @failed_before)
        """;

    /// <summary>Deletes a retried job's failed execution.</summary>
    public const string FailedDelete = "DELETE FROM keel_failed_executions WHERE job_id = @job_id";

    /// <summary>Up to <c>@limit</c> failed jobs of a selection, oldest failure first: what a retry takes.</summary>
    public const string JobsRetryPick = "SELECT j.id FROM keel_failed_executions f JOIN keel_jobs j ON j.id = f.job_id WHERE " + SelectionFilter + " ORDER BY f.created_at, j.id LIMIT @limit";

    /// <summary>Starts a retried job over (attempts, worker losses; the error history stays); returns its uniqueness key.</summary>
    public const string JobRetryReset = "UPDATE keel_jobs SET attempts = 0, worker_losses = 0, suspect = 0 WHERE id = @job_id RETURNING unique_key";

    private const string JobStateExpression = """
        CASE WHEN j.finished_at IS NOT NULL THEN 'Finished'
             WHEN j.discarded_at IS NOT NULL THEN 'Discarded'
             WHEN f.job_id IS NOT NULL THEN 'Failed'
             WHEN EXISTS (SELECT 1 FROM keel_claimed_executions c WHERE c.job_id = j.id) THEN 'Claimed'
             WHEN EXISTS (SELECT 1 FROM keel_ready_executions r WHERE r.job_id = j.id) THEN 'Ready'
             WHEN EXISTS (SELECT 1 FROM keel_scheduled_executions s WHERE s.job_id = j.id) THEN 'Scheduled'
             WHEN EXISTS (SELECT 1 FROM keel_blocked_executions b WHERE b.job_id = j.id) THEN 'Blocked'
        END
        """;

    /// <summary>Up to <c>@limit</c> jobs of a selection in the allowed states (<c>@states</c>, JSON), lowest ids first, with their state.</summary>
    public const string JobsDiscardPick = "SELECT j.id, state FROM (SELECT j.id, " + JobStateExpression + " AS state FROM keel_jobs j LEFT JOIN keel_failed_executions f ON f.job_id = j.id WHERE " + SelectionFilter + ") j WHERE state IN (SELECT value FROM json_each(@states)) ORDER BY j.id LIMIT @limit";

    /// <summary>Deletes a discarded job's execution row, whichever table holds it.</summary>
    public const string ExecutionsDelete = """
        DELETE FROM keel_ready_executions WHERE job_id = @job_id;
        DELETE FROM keel_scheduled_executions WHERE job_id = @job_id;
        DELETE FROM keel_blocked_executions WHERE job_id = @job_id;
        DELETE FROM keel_failed_executions WHERE job_id = @job_id;
        """;

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
               p.lease_expires_at
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        JOIN keel_processes p ON p.id = c.process_id
        WHERE (@process_id IS NULL OR c.process_id = @process_id)
          AND (@stale_before IS NULL OR p.last_heartbeat_at < @stale_before)
        ORDER BY c.claimed_at, c.id
        LIMIT @limit
        """;

    /// <summary>Takes chosen claims (<c>@claim_ids</c>, JSON) whatever their owner; returns (job, attempt, claim, claimed at, runner JSON).</summary>
    public const string ClaimsRecoverDelete = """
        DELETE FROM keel_claimed_executions WHERE id IN (SELECT value FROM json_each(@claim_ids))
        RETURNING job_id, attempt, id, claimed_at, (SELECT json_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname) FROM keel_processes p WHERE p.id = process_id)
        """;

    /// <summary>Counts the attempt of a claim an operator failed; returns (queue, priority).</summary>
    public const string JobSetAttempt = "UPDATE keel_jobs SET attempts = @attempt WHERE id = @job_id RETURNING queue, priority";

    /// <summary>A page of jobs in any state, newest first (by id), filtered by queue, kind, error and time.</summary>
    public const string JobsList = """
        SELECT id, kind, queue, state, priority, attempts, created_at, scheduled_time, coalesce(finished_at, discarded_at), exception_type, message, process_id, concurrency_key
        FROM (
            SELECT j.*, f.exception_type, f.message, f.created_at AS failed_at,
                   (SELECT c.process_id FROM keel_claimed_executions c WHERE c.job_id = j.id) AS process_id,
                   coalesce((SELECT s.scheduled_at FROM keel_scheduled_executions s WHERE s.job_id = j.id), j.scheduled_at) AS scheduled_time,
        """ + JobStateExpression + """
                   AS state
            FROM keel_jobs j LEFT JOIN keel_failed_executions f ON f.job_id = j.id
            WHERE (@before_id IS NULL OR j.id < @before_id)
              AND (@queue IS NULL OR j.queue = @queue)
              AND (@kind IS NULL OR j.kind = @kind)
              AND (@exception_type IS NULL OR f.exception_type = @exception_type)
              AND (@failed_after IS NULL OR f.created_at >= @failed_after)
              AND (@failed_before IS NULL OR f.created_at < @failed_before)
              AND (@created_after IS NULL OR j.created_at >= @created_after)
              AND (@created_before IS NULL OR j.created_at < @created_before)
            ORDER BY j.id DESC) AS j
        WHERE (@state IS NULL OR state = @state)
        ORDER BY id DESC
        LIMIT @limit
        """;

    // With a state, the list walks that state's own table (or, for finished and discarded jobs, the jobs table)
    // backwards by job id, so a page costs a short index walk at any table size instead of a state computed per job.
    // The page key is a plain bound (the largest id for the first page): "@before IS NULL OR id < @before" would keep
    // SQLite from seeking, and a page in the middle of a million finished jobs would scan half the table.
    private const string StateListColumns = """
        SELECT j.id, j.kind, j.queue, @state, j.priority, j.attempts, j.created_at, {0}, coalesce(j.finished_at, j.discarded_at), {1}, {2}, {3}, j.concurrency_key
        """;

    private const string StateListFilter = """
          AND (@queue IS NULL OR {queue}.queue = @queue)
          AND (@kind IS NULL OR j.kind = @kind)
          AND (@created_after IS NULL OR j.created_at >= @created_after)
          AND (@created_before IS NULL OR j.created_at < @created_before)
        """;

    // Error filters match failed jobs only, as in the unfiltered list.
    private const string NotFailedFilter = " AND @exception_type IS NULL AND @failed_after IS NULL AND @failed_before IS NULL";

    private const string ListTail = " ORDER BY e.job_id DESC LIMIT @limit";

    /// <summary>A page of one state's jobs, newest first: a short walk of that state's own table (see above).</summary>
    public static readonly Dictionary<JobState, string> JobsListOfState = new()
    {
        [JobState.Ready] = ExecutionList("keel_ready_executions", "e", "j.scheduled_at", "NULL", "NULL", "NULL") + NotFailedFilter + ListTail,
        [JobState.Scheduled] = ExecutionList("keel_scheduled_executions", "e", "e.scheduled_at", "NULL", "NULL", "NULL") + NotFailedFilter + ListTail,
        [JobState.Blocked] = ExecutionList("keel_blocked_executions", "e", "j.scheduled_at", "NULL", "NULL", "NULL") + NotFailedFilter + ListTail,
        [JobState.Claimed] = ExecutionList("keel_claimed_executions", "j", "j.scheduled_at", "NULL", "NULL", "e.process_id") + NotFailedFilter + ListTail,
        [JobState.Failed] = ExecutionList("keel_failed_executions", "e", "j.scheduled_at", "e.exception_type", "e.message", "NULL") + """

              AND (@exception_type IS NULL OR e.exception_type = @exception_type)
              AND (@failed_after IS NULL OR e.created_at >= @failed_after)
              AND (@failed_before IS NULL OR e.created_at < @failed_before)
            """ + ListTail,
        [JobState.Finished] = string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, "j.scheduled_at", "NULL", "NULL", "NULL")
            + " FROM keel_jobs j WHERE j.finished_at IS NOT NULL AND j.id < @before_key\n" + Filter("j") + NotFailedFilter + " ORDER BY j.id DESC LIMIT @limit",
        [JobState.Discarded] = string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, "j.scheduled_at", "NULL", "NULL", "NULL")
            + " FROM keel_jobs j WHERE j.discarded_at IS NOT NULL AND j.finished_at IS NULL AND j.id < @before_key\n" + Filter("j") + NotFailedFilter + " ORDER BY j.id DESC LIMIT @limit",
    };

    // Execution tables that carry the queue (all but claims) are filtered on their own column, not the job's.
    private static string Filter(string queueAlias) => StateListFilter.Replace("{queue}", queueAlias, StringComparison.Ordinal);

    // The bound is repeated on the jobs side so that a merge join walks the jobs key from the page, not from the newest job.
    private static string ExecutionList(string table, string queueAlias, string scheduled, string errorType, string message, string process)
        => string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, scheduled, errorType, message, process)
            + $" FROM {table} e JOIN keel_jobs j ON j.id = e.job_id WHERE e.job_id < @before_key AND j.id < @before_key\n" + Filter(queueAlias);

    /// <summary>
    /// The jobs per state, each count stopping at <c>@limit</c>: each walks at most @limit rows of an index (the
    /// execution tables' keys, the partial finished and discarded indexes), so the overview stays cheap with millions of jobs.
    /// </summary>
    public const string JobsCount = """
        SELECT (SELECT count(*) FROM (SELECT 1 FROM keel_ready_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_scheduled_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_blocked_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_claimed_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_failed_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_jobs WHERE finished_at IS NOT NULL LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_jobs WHERE discarded_at IS NOT NULL AND finished_at IS NULL LIMIT @limit))
        """;

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
}

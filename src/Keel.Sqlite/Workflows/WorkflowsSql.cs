using Keel.Storage;

namespace Keel.Sqlite;

/// <summary>
/// The SQL of workflows on SQLite (docs/workflows.md): dependency edges, awaiting jobs, batches and their callbacks.
/// Each statement is one step of <see cref="WorkflowSteps"/>, run in the transaction of the outcome that causes it.
/// Times are Unix microseconds.
/// </summary>
internal static class WorkflowsSql
{
    /// <summary>Records a parent's outcome on its unsettled edges; returns (child, wait_on, on_unmet).</summary>
    public const string EdgesSettle = """
        UPDATE keel_job_dependencies SET outcome = @outcome
        WHERE parent_id = @parent_id AND outcome IS NULL
        RETURNING job_id, wait_on, on_unmet
        """;

    /// <summary>One parent of an awaiting job settled; returns the parents it still waits for.</summary>
    public const string AwaitingParentSettled = "UPDATE keel_awaiting_executions SET waiting = waiting - 1 WHERE job_id = @job_id RETURNING waiting";

    /// <summary>Takes a job out of awaiting; returns its job id when it was awaiting.</summary>
    public const string AwaitingDelete = "DELETE FROM keel_awaiting_executions WHERE job_id = @job_id RETURNING job_id";

    /// <summary>Makes a job awaiting.</summary>
    public const string AwaitingInsert = """
        INSERT INTO keel_awaiting_executions (job_id, queue, priority, waiting, created_at)
        VALUES (@job_id, @queue, @priority, @waiting, @now)
        """;

    /// <summary>Marks a job discarded; returns its workflow flags (workflow, batch_id).</summary>
    public const string JobDiscardReturning = "UPDATE keel_jobs SET discarded_at = @now WHERE id = @job_id RETURNING workflow, batch_id";

    /// <summary>A job's workflow flags (workflow, batch_id) and own due time.</summary>
    public const string JobFlags = "SELECT workflow, batch_id, scheduled_at FROM keel_jobs WHERE id = @job_id";

    /// <summary>Marks a job as having dependents (also taking its row for this transaction); no row when there is no such job.</summary>
    public const string ParentMark = "UPDATE keel_jobs SET workflow = 1 WHERE id = @job_id RETURNING id";

    /// <summary>A job's final outcome (1 succeeded, 2 failed, 4 discarded), or null while it is not final.</summary>
    public const string ParentOutcome = """
        SELECT CASE WHEN j.finished_at IS NOT NULL THEN 1
                    WHEN j.discarded_at IS NOT NULL THEN 4
                    WHEN EXISTS (SELECT 1 FROM keel_failed_executions f WHERE f.job_id = j.id) THEN 2
               END
        FROM keel_jobs j WHERE j.id = @job_id
        """;

    /// <summary>Writes one edge.</summary>
    public const string EdgeInsert = """
        INSERT INTO keel_job_dependencies (parent_id, job_id, wait_on, on_unmet, outcome)
        VALUES (@parent_id, @job_id, @wait_on, @on_unmet, @outcome)
        """;

    /// <summary>A job's parents (parent, child, wait_on, on_unmet, outcome).</summary>
    public const string ParentsOf = "SELECT parent_id, job_id, wait_on, on_unmet, outcome FROM keel_job_dependencies WHERE job_id = @job_id ORDER BY parent_id";

    /// <summary>A job's children (parent, child, wait_on, on_unmet, outcome).</summary>
    public const string ChildrenOf = "SELECT parent_id, job_id, wait_on, on_unmet, outcome FROM keel_job_dependencies WHERE parent_id = @job_id ORDER BY job_id";

    /// <summary>Creates a batch with nothing pending yet; returns its id.</summary>
    public const string BatchInsert = """
        INSERT INTO keel_batches (parent_batch_id, description, created_at)
        VALUES (@parent_batch_id, @description, @now)
        RETURNING id
        """;

    /// <summary>Adds pending jobs to a batch that has not completed; no row changed when it has (or is gone).</summary>
    public const string BatchAdd = "UPDATE keel_batches SET total = total + @count, pending = pending + @count WHERE id = @batch_id AND completed_at IS NULL";

    /// <summary>Counts settled jobs of a batch by outcome, in one update; returns the counters after.</summary>
    public const string BatchCount = """
        UPDATE keel_batches
        SET pending = pending - @succeeded - @failed - @discarded, succeeded = succeeded + @succeeded, failed = failed + @failed, discarded = discarded + @discarded
        WHERE id = @batch_id
        RETURNING pending, failed + discarded, completed_at IS NOT NULL, succeeded_at IS NOT NULL, parent_batch_id
        """;

    /// <summary>A batch's counters.</summary>
    public const string BatchCounters = "SELECT pending, failed + discarded, completed_at IS NOT NULL, succeeded_at IS NOT NULL, parent_batch_id FROM keel_batches WHERE id = @batch_id";

    /// <summary>Completes a batch once (<c>@all</c>: every job succeeded).</summary>
    public const string BatchComplete = """
        UPDATE keel_batches SET completed_at = @now, succeeded_at = CASE WHEN @all THEN @now END
        WHERE id = @batch_id AND completed_at IS NULL
        """;

    /// <summary>Records, once, that every job of a completed batch has succeeded after retries.</summary>
    public const string BatchSucceed = "UPDATE keel_batches SET succeeded_at = @now WHERE id = @batch_id AND succeeded_at IS NULL";

    /// <summary>A retried failed job counts as pending again.</summary>
    public const string BatchRetried = "UPDATE keel_batches SET failed = failed - 1, pending = pending + 1 WHERE id = @batch_id AND failed > 0";

    /// <summary>Adds a callback to a batch.</summary>
    public const string CallbackInsert = "INSERT INTO keel_batch_callbacks (batch_id, on_event, kind, job) VALUES (@batch_id, @on_event, @kind, @job)";

    /// <summary>A batch's callbacks of one event not yet enqueued (id, job).</summary>
    public const string CallbacksDue = "SELECT id, job FROM keel_batch_callbacks WHERE batch_id = @batch_id AND on_event = @on_event AND job_id IS NULL ORDER BY id";

    /// <summary>Records a callback's job.</summary>
    public const string CallbackEnqueued = "UPDATE keel_batch_callbacks SET job_id = @job_id WHERE id = @id";

    /// <summary>One batch.</summary>
    public const string BatchGet = """
        SELECT id, parent_batch_id, description, total, pending, succeeded, failed, discarded, created_at, completed_at, succeeded_at
        FROM keel_batches WHERE id = @batch_id
        """;

    /// <summary>A batch's callbacks (event, kind, job id).</summary>
    public const string BatchCallbacks = "SELECT on_event, kind, job_id FROM keel_batch_callbacks WHERE batch_id = @batch_id ORDER BY id";

    /// <summary>A page of batches, newest first (<c>@pending</c>: null all, 1 pending only, 0 completed only).</summary>
    public const string BatchesList = """
        SELECT id, parent_batch_id, description, total, pending, succeeded, failed, discarded, created_at, completed_at, succeeded_at
        FROM keel_batches
        WHERE id < @before_key AND (@pending IS NULL OR (completed_at IS NULL) = @pending)
        ORDER BY id DESC
        LIMIT @limit
        """;

    /// <summary>Deletes up to <c>@limit</c> batches completed before <c>@cutoff</c> (callbacks go by cascade).</summary>
    public const string BatchesClear = """
        DELETE FROM keel_batches WHERE id IN (SELECT id FROM keel_batches WHERE completed_at < @cutoff LIMIT @limit)
        """;

    /// <summary>A page of a batch's jobs (built from <see cref="JobStates"/>).</summary>
    public static readonly string BatchJobs = JobStates.BatchJobsSelect;
}

using System.Globalization;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>
/// The SQL of the hot path on MariaDB/MySQL: <c>keel_ready_executions</c> (the only table workers poll),
/// <c>keel_claimed_executions</c> (a claim is a lease with an identity) and <c>keel_failed_executions</c>. Without
/// data-modifying CTEs or <c>UPDATE … RETURNING</c>, an operation is a locking read followed by statements keyed by
/// what it locked, in one transaction and as few round trips as the reads allow. Lists of ids are written into the
/// text as integer lists (<c>{ids}</c>): there are no array parameters, and a literal list keeps the optimizer on the
/// primary key. <c>@keel_now</c> is the transaction's time (<see cref="ConnectionSql"/>).
/// </summary>
internal static class ClaimsSql
{
    /// <summary>The start of every claim's pick; an index hint may follow, then <see cref="Ready"/> or <see cref="Suspects"/>.</summary>
    private const string Pick = """
        SELECT r.job_id, r.created_at
        FROM keel_ready_executions r
        """;

    /// <summary>
    /// Pins the pick of one queue to <c>keel_ready_poll_by_queue</c> (queue, suspect, priority, job_id). Left to itself
    /// the optimizer can walk <c>keel_ready_poll_all</c> in priority order instead (it does on a small table) and test
    /// each row's queue: a locking read locks every row it walks, other queues' rows too, however briefly under READ
    /// COMMITTED, and a claimer of those queues that meets one then skips it and takes its queue for empty. On its own
    /// index a pick walks only its queue's rows, in order.
    /// </summary>
    private const string OnItsQueueIndex = " FORCE INDEX (keel_ready_poll_by_queue)";

    /// <summary>Jobs that are not suspects; a queue filter (or none) and <see cref="ClaimTail"/> follow.</summary>
    private const string Ready = "\nWHERE r.suspect = 0 AND\n";

    /// <summary>Suspects only, served by the index <c>keel_ready_poll_all</c> (suspect first) unless pinned to a queue's.</summary>
    private const string Suspects = "\nWHERE r.suspect = 1 AND\n";

    /// <summary>One queue, compared byte-wise.</summary>
    private const string OneQueue = "      r.queue = @queue AND\n";

    /// <summary>Queues starting with a literal prefix (no LIKE wildcards).</summary>
    private const string QueuePrefix = "      LEFT(r.queue, CHAR_LENGTH(@queue)) = @queue AND\n";

    /// <summary>
    /// The rest of a claim's pick: unpaused queues only, by priority then id, locked, skipping rows another claimer
    /// holds. The paused queues are read by a plain subquery, which takes no locks (only the outer table's rows are
    /// locked), so claimers never skip each other's view of <c>keel_pauses</c>.
    /// </summary>
    private const string ClaimTail = """
              r.queue NOT IN (SELECT p.queue FROM keel_pauses p)
        ORDER BY r.priority, r.job_id
        LIMIT @limit
        FOR UPDATE SKIP LOCKED
        """;

    /// <summary>Picks and locks ready jobs of every unpaused queue (index (suspect, priority, job_id)); <see cref="JobsClaimTake"/> follows.</summary>
    public const string JobsClaimAll = Pick + Ready + ClaimTail;

    /// <summary>Picks from one queue, compared byte-wise, on its index (<see cref="OnItsQueueIndex"/>).</summary>
    public const string JobsClaimExact = Pick + OnItsQueueIndex + Ready + OneQueue + ClaimTail;

    /// <summary>
    /// Picks from queues starting with a literal prefix (no LIKE wildcards). It walks <c>keel_ready_poll_all</c> in
    /// priority order, so it can briefly lock another queue's row as it passes it (a claimer of that queue then skips
    /// the row for this once). A range on the queue index instead would lock every ready row of the matching queues
    /// before sorting them, and so keep each other claimer of the prefix from all of them until this claim commits.
    /// </summary>
    public const string JobsClaimPrefix = Pick + Ready + QueuePrefix + ClaimTail;

    /// <summary>Picks suspects from every unpaused queue.</summary>
    public const string JobsClaimSuspectAll = Pick + Suspects + ClaimTail;

    /// <summary>Picks suspects from one queue, on its index (<see cref="OnItsQueueIndex"/>).</summary>
    public const string JobsClaimSuspectExact = Pick + OnItsQueueIndex + Suspects + OneQueue + ClaimTail;

    /// <summary>Picks suspects from queues starting with a literal prefix.</summary>
    public const string JobsClaimSuspectPrefix = Pick + Suspects + QueuePrefix + ClaimTail;

    /// <summary>
    /// Takes the picked (locked) jobs <paramref name="ids"/> (their pick returned when each became ready): deletes the
    /// ready rows, inserts the claims (their foreign key to the process fails if it was pruned, and the transaction rolls
    /// back), and returns the claims with their jobs in claim order.
    /// </summary>
    /// <param name="ids">The picked job ids.</param>
    /// <returns>The statements.</returns>
    public static string JobsClaimTake(IReadOnlyCollection<long> ids) => ConnectionSql.Each(ids, id => $"DELETE FROM keel_ready_executions WHERE job_id = {id}") + $"""
        INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at)
        SELECT j.id, @process_id, j.attempts + 1, @keel_now FROM keel_jobs j WHERE j.id IN ({string.Join(',', ids)}) ORDER BY j.id;
        SELECT c.id, j.id, j.kind, j.queue, j.args, j.priority, c.attempt, j.max_attempts, j.worker_losses, j.created_at,
               c.claimed_at, j.trace_parent, j.suspect, j.batch_id, j.checkpoint
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        WHERE c.job_id IN ({string.Join(',', ids)})
        ORDER BY j.priority, j.id
        """;

    /// <summary>
    /// The start of each claim's completion: locks the claim if the process still holds it (the fence) and returns it
    /// (no row: not held) with what giving back a concurrency permit needs (claim, job, key, limit, duration, queue, priority).
    /// </summary>
    private static string CompleteHeld(ClaimRef claim) => $"""
        SELECT c.id, c.job_id, j.concurrency_key, j.concurrency_limit, j.concurrency_duration_ms, j.queue, j.priority, j.workflow, j.batch_id
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        WHERE {Held(claim)}
        FOR UPDATE
        """;

    /// <summary>The fence of a claim's outcome, on claim <c>c</c>: the process still holds that claim, for that job.</summary>
    private static string Held(ClaimRef claim)
        => string.Create(CultureInfo.InvariantCulture, $"c.id = {claim.ClaimId} AND c.job_id = {claim.JobId} AND c.process_id = @process_id");

    /// <summary>
    /// Completes held claims and keeps the jobs with <c>finished_at</c>, freeing their uniqueness keys; returns the held
    /// claims (<see cref="CompleteHeld"/>, one result per claim) having given their permits back (the caller promotes blocked jobs into them after commit).
    /// </summary>
    /// <param name="claims">The claims to complete.</param>
    /// <returns>The statements.</returns>
    /// <param name="plainOnly">
    /// Complete only jobs in no workflow (<c>workflow</c> and <c>batch_id</c> null): the hot path, whose batch commits
    /// with its last statement; a held claim of a workflow job is left held, for <see langword="false"/> to complete in
    /// a transaction that also advances its workflow.
    /// </param>
    public static string JobsCompletePreserve(IEnumerable<ClaimRef> claims, bool plainOnly = false) => ConnectionSql.EachOf(claims, claim => CompleteHeld(claim) + $"""
        ;
        UPDATE keel_jobs j JOIN keel_claimed_executions c ON c.job_id = j.id
        SET j.finished_at = @keel_now, j.started_at = c.claimed_at, j.attempts = c.attempt, j.finished_by = @runner, j.checkpoint = NULL,
            j.suspect = 0, j.shared_losses = 0
        WHERE {Held(claim)}{Plain(plainOnly)};
        DELETE u FROM keel_unique_keys u JOIN keel_claimed_executions c ON c.job_id = u.job_id JOIN keel_jobs j ON j.id = c.job_id
        WHERE {Held(claim)}{Plain(plainOnly)};
        {GiveBack($"SELECT c.job_id FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE {Held(claim)}{Plain(plainOnly)}")};
        DELETE c FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE {Held(claim)}{Plain(plainOnly)}
        """);

    private static string Plain(bool plainOnly) => plainOnly ? " AND j.workflow IS NULL AND j.batch_id IS NULL" : string.Empty;

    /// <summary>
    /// Completes held claims and deletes the jobs (their claims and uniqueness keys go by cascade); returns the held
    /// claims (<see cref="CompleteHeld"/>, one result per claim) having given their permits back (the caller promotes blocked jobs into them after commit).
    /// </summary>
    /// <param name="claims">The claims to complete.</param>
    /// <returns>The statements.</returns>
    /// <param name="plainOnly">Complete only jobs in no workflow (see <see cref="JobsCompletePreserve"/>).</param>
    public static string JobsCompleteDelete(IEnumerable<ClaimRef> claims, bool plainOnly = false) => ConnectionSql.EachOf(claims, claim => CompleteHeld(claim) + $"""
        ;
        SET @keel_job = (SELECT c.job_id FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE {Held(claim)}{Plain(plainOnly)});
        {GiveBack("SELECT @keel_job")};
        DELETE FROM keel_jobs WHERE id = @keel_job
        """);

    /// <summary>
    /// Gives the permit of a finishing job with a concurrency key back, in the completion's transaction (a lost
    /// connection after the commit can no longer lose it); promoting blocked jobs into it runs after commit, and
    /// maintenance promotes into a free permit whose promotion was lost (<c>ConcurrencySql.ConcurrencyMaintainKeys</c>).
    /// </summary>
    /// <param name="jobIdSelect">A select of the finishing job's id.</param>
    private static string GiveBack(string jobIdSelect) => $"""
        UPDATE keel_semaphores s JOIN keel_jobs j ON j.concurrency_key = s.`key`
        SET s.value = LEAST(s.limit_value, s.value + 1)
        WHERE j.id = ({jobIdSelect})
        """;

    /// <summary>Locks a claim only while the process holds it (the fence of a failure); returns (job, attempt, claimed at, queue, priority, limited, cancel reason).</summary>
    public const string ClaimLock = """
        SELECT c.job_id, c.attempt, c.claimed_at, j.queue, j.priority, j.concurrency_key IS NOT NULL, c.cancel_reason
        FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id
        WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id
        FOR UPDATE
        """;

    /// <summary>
    /// Records a failed attempt of a claim locked by <see cref="ClaimLock"/>: deletes the claim, counts the attempt
    /// (and its retry time), adds the error and the run to the job's history; then fails the job for good (no retry
    /// time, freeing its uniqueness key), makes it ready (retry due now, unlimited jobs only) or schedules it (a job with
    /// a concurrency key always goes through scheduled, so the dispatcher takes a permit again). A job with a key gives
    /// its permit back next, in the same transaction.
    /// </summary>
    public const string JobFail = """
        DELETE FROM keel_claimed_executions WHERE id = @claim_id;
        UPDATE keel_jobs SET attempts = @attempt, scheduled_at = coalesce(@retry_at, scheduled_at), suspect = 0, shared_losses = 0,
            checkpoint = CASE WHEN @retry_at IS NULL THEN NULL ELSE checkpoint END
        WHERE id = @job_id;
        INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
        VALUES (@job_id, @attempt, @exception_type, @message, @stack_trace, NULL, @keel_now);
        INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail)
        VALUES (@job_id, @attempt, @claim_id, @runner, @claimed_at, @keel_now, 'failed',
                CASE WHEN @retry_at IS NULL THEN 'failed-for-good' ELSE 'retry-scheduled' END, 1,
                CONCAT(@exception_type, ': ', @message));
        INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
        SELECT id, @exception_type, @message, @stack_trace, @attempt, NULL, @keel_now, queue
        FROM keel_jobs WHERE id = @job_id AND @retry_at IS NULL;
        DELETE FROM keel_unique_keys WHERE job_id = @job_id AND @retry_at IS NULL;
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at)
        SELECT id, queue, priority, @keel_now
        FROM keel_jobs WHERE id = @job_id AND @retry_at <= @keel_now AND concurrency_key IS NULL;
        INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
        SELECT id, queue, priority, @retry_at, @keel_now
        FROM keel_jobs WHERE id = @job_id AND (@retry_at > @keel_now OR (@retry_at IS NOT NULL AND concurrency_key IS NOT NULL))
        """;

    /// <summary>Fails a job for good, with its last error.</summary>
    public const string FailedInsert = """
        INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
        SELECT id, @exception_type, @message, @stack_trace, @attempt, @cause, @keel_now, queue FROM keel_jobs WHERE id = @job_id
        """;

    /// <summary>Makes a job ready.</summary>
    public const string ReadyInsert = "INSERT INTO keel_ready_executions (job_id, queue, priority, created_at) VALUES (@job_id, @queue, @priority, @keel_now)";

    /// <summary>Back to ready, a suspect staying one (recovery).</summary>
    public const string ReadyInsertKeepSuspect = """
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
        SELECT id, queue, priority, @keel_now, suspect FROM keel_jobs WHERE id = @job_id
        """;

    /// <summary>Locks every claim of a process (release); returns (job, claim, attempt, claimed at, cancel reason).</summary>
    public const string ClaimsReleaseAll = "SELECT job_id, id, attempt, claimed_at, cancel_reason FROM keel_claimed_executions WHERE process_id = @process_id ORDER BY id FOR UPDATE";

    /// <summary>Locks some claims of a process (release); returns (job, claim, attempt, claimed at, cancel reason), one result per claim.</summary>
    /// <param name="claimIds">The claims.</param>
    /// <returns>The statements.</returns>
    public static string ClaimsReleaseSome(IEnumerable<long> claimIds)
        => ConnectionSql.Each(claimIds, id => $"SELECT job_id, id, attempt, claimed_at, cancel_reason FROM keel_claimed_executions WHERE process_id = @process_id AND id = {id} FOR UPDATE");

    /// <summary>
    /// The rest of a release, for the locked claims <paramref name="claimIds"/> of jobs <paramref name="jobIds"/>: back
    /// to ready (attempts unchanged, a suspect staying one), the claims deleted.
    /// </summary>
    /// <param name="claimIds">The locked claims.</param>
    /// <param name="jobIds">Their jobs.</param>
    /// <returns>The statements.</returns>
    public static string ReleaseTail(IEnumerable<long> claimIds, IEnumerable<long> jobIds) => ConnectionSql.Each(claimIds, id => $"DELETE FROM keel_claimed_executions WHERE id = {id}") + $"""
        INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
        SELECT id, queue, priority, @keel_now, suspect FROM keel_jobs WHERE id IN ({string.Join(',', jobIds)})
        """;

    /// <summary>Whether a process still holds a claim under a lease that has not expired.</summary>
    public const string ClaimHeld = """
        SELECT EXISTS (
            SELECT 1
            FROM keel_claimed_executions c
            JOIN keel_processes p ON p.id = c.process_id
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id
              AND p.lease_expires_at > @keel_now)
        """;
}

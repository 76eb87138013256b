namespace Keel.PostgreSql;

/// <summary>The SQL of cancelling running jobs on PostgreSQL: the request stored on the claim, read by its worker, the cancelled run's end.</summary>
internal static class CancelSql
{
    /// <summary>
    /// Stores a cancel request on the job's claim (the first request wins; one that resumes keeps its reason apart) and notifies the workers on
    /// <see cref="ClaimsSql.NotifyChannel"/> with the payload <see cref="Keel.Storage.JobNotifications.CancelRequested"/>. Returns (claim,
    /// process, whether a cancel was already requested), or no row when the job is not claimed.
    /// </summary>
    public const string ClaimCancelRequest = """
        WITH claim AS (
            SELECT id, process_id, cancel_requested_at IS NOT NULL AS already
            FROM keel_claimed_executions
            WHERE job_id = @job_id
            FOR UPDATE
        ),
        requested AS (
            UPDATE keel_claimed_executions c
            SET cancel_requested_at = coalesce(@now, now()),
                cancel_reason = CASE WHEN @resume THEN NULL ELSE @reason END,
                cancel_resume_reason = CASE WHEN @resume THEN @reason END
            FROM claim
            WHERE c.id = claim.id AND NOT claim.already
            RETURNING c.id
        )
        SELECT claim.id, claim.process_id, claim.already,
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', 'keel:cancel') FROM requested) x)
        FROM claim
        """;

    /// <summary>A process's claims with a cancel request: (claim, job, reason, whether the job resumes).</summary>
    public const string ClaimsCancelRequested = """
        SELECT id, job_id, coalesce(cancel_reason, cancel_resume_reason), cancel_resume_reason IS NOT NULL FROM keel_claimed_executions
        WHERE process_id = @process_id AND cancel_requested_at IS NOT NULL
        """;

    /// <summary>
    /// Ends a cancelled run under its claim: deletes the claim only while the process holds it, discards the job, records
    /// the run, frees its uniqueness key and gives its permit back. Returns (claims deleted, concurrency key, duration,
    /// whether the job is in a workflow: the caller settles it as discarded in the same transaction).
    /// </summary>
    public const string JobCancelFinish = """
        WITH released AS (
            DELETE FROM keel_claimed_executions
            WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id
            RETURNING id, job_id, attempt, claimed_at
        ),
        job AS (
            UPDATE keel_jobs j
            SET discarded_at = coalesce(@now, now()), suspect = false, shared_losses = 0, checkpoint = NULL
            FROM released r
            WHERE j.id = r.job_id
            RETURNING j.id, j.concurrency_key, j.concurrency_duration_ms, j.workflow, j.batch_id
        ),
        run AS (
            INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail)
            SELECT r.job_id, r.attempt, r.id, @runner, r.claimed_at, coalesce(@now, now()), @outcome, @cause, false, @detail
            FROM released r
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING job
            WHERE u.job_id = job.id
        ),
        gave AS (
            SELECT concurrency_key FROM job
        ),
        """ + ConcurrencySql.GiveBack + """
        SELECT (SELECT count(*) FROM released),
               (SELECT concurrency_key FROM job),
               (SELECT concurrency_duration_ms FROM job),
               (SELECT workflow IS NOT NULL OR batch_id IS NOT NULL FROM job)
        """;
}

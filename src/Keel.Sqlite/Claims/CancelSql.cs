namespace Keel.Sqlite;

/// <summary>The SQL of cancelling running jobs on SQLite: the request stored on the claim, read by its worker, the cancelled run's end.</summary>
internal static class CancelSql
{
    /// <summary>The job's claim: (claim, process, whether a cancel was already requested).</summary>
    public const string ClaimOfJob = "SELECT id, process_id, cancel_requested_at IS NOT NULL FROM keel_claimed_executions WHERE job_id = @job_id";

    /// <summary>Stores a cancel request on a claim (the first request wins); one that resumes keeps its reason apart.</summary>
    public const string ClaimCancelRequest = """
        UPDATE keel_claimed_executions
        SET cancel_requested_at = @now,
            cancel_reason = CASE WHEN @resume THEN NULL ELSE @reason END,
            cancel_resume_reason = CASE WHEN @resume THEN @reason END
        WHERE id = @claim_id AND cancel_requested_at IS NULL
        """;

    /// <summary>
    /// Deletes a claim only while the process holds it, for a failed attempt; returns (job, attempt, claimed at, cancel
    /// reason): a run asked to stop that failed before it saw its token ends cancelled, not retried.
    /// </summary>
    public const string ClaimDeleteForFailure = "DELETE FROM keel_claimed_executions WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id RETURNING job_id, attempt, claimed_at, cancel_reason";

    /// <summary>A process's claims with a cancel request: (claim, job, reason, whether the job resumes).</summary>
    public const string ClaimsCancelRequested = """
        SELECT id, job_id, coalesce(cancel_reason, cancel_resume_reason), cancel_resume_reason IS NOT NULL FROM keel_claimed_executions
        WHERE process_id = @process_id AND cancel_requested_at IS NOT NULL
        """;

    /// <summary>Discards a job whose run was cancelled (its permit and key are given back next).</summary>
    public const string JobDiscardCancelled = "UPDATE keel_jobs SET discarded_at = @now, suspect = 0, shared_losses = 0, checkpoint = NULL WHERE id = @job_id";
}

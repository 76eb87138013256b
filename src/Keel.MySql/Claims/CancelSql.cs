namespace Keel.MySql;

/// <summary>The SQL of cancelling running jobs on MariaDB/MySQL: the request stored on the claim, read by its worker, the cancelled run's end.</summary>
internal static class CancelSql
{
    /// <summary>Locks the job's claim: (claim, process, whether a cancel was already requested).</summary>
    public const string ClaimOfJob = "SELECT id, process_id, cancel_requested_at IS NOT NULL FROM keel_claimed_executions WHERE job_id = @job_id FOR UPDATE";

    /// <summary>Stores a cancel request on a claim (the first request wins); one that resumes keeps its reason apart.</summary>
    public const string ClaimCancelRequest = """
        UPDATE keel_claimed_executions
        SET cancel_requested_at = @keel_now,
            cancel_reason = CASE WHEN @resume THEN NULL ELSE @reason END,
            cancel_resume_reason = CASE WHEN @resume THEN @reason END
        WHERE id = @claim_id AND cancel_requested_at IS NULL
        """;

    /// <summary>A process's claims with a cancel request: (claim, job, reason, whether the job resumes).</summary>
    public const string ClaimsCancelRequested = """
        SELECT id, job_id, coalesce(cancel_reason, cancel_resume_reason), cancel_resume_reason IS NOT NULL FROM keel_claimed_executions
        WHERE process_id = @process_id AND cancel_requested_at IS NOT NULL
        """;

    /// <summary>Locks a claim only while the process holds it (the fence of a cancelled run's end); returns (job, attempt, claimed at).</summary>
    public const string ClaimLock = """
        SELECT job_id, attempt, claimed_at FROM keel_claimed_executions
        WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id
        FOR UPDATE
        """;

    /// <summary>Deletes a locked claim and discards its job (its key and permit are given back next).</summary>
    public const string JobCancelFinish = """
        DELETE FROM keel_claimed_executions WHERE id = @claim_id;
        UPDATE keel_jobs SET discarded_at = @keel_now, suspect = 0, shared_losses = 0, checkpoint = NULL WHERE id = @job_id
        """;

    /// <summary>Discards a job whose run was cancelled (its claim already taken).</summary>
    public const string JobDiscardCancelled = "UPDATE keel_jobs SET discarded_at = @keel_now, suspect = 0, shared_losses = 0, checkpoint = NULL WHERE id = @job_id";
}

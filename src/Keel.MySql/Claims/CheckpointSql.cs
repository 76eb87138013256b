namespace Keel.MySql;

/// <summary>The SQL of checkpoints on MariaDB/MySQL: a running job's saved state, written with the job under its claim.</summary>
internal static class CheckpointSql
{
    /// <summary>Records a run's progress on its claim, only while the process holds it.</summary>
    public const string ProgressReport = """
        UPDATE keel_claimed_executions SET progress = @progress, progress_message = @message, progress_at = @keel_now
        WHERE id = @claim_id AND process_id = @process_id
        """;

    /// <summary>
    /// Locks the claim while the process holds it (a prune or release that would delete it waits for this write);
    /// returns it (no row: not held, write nothing).
    /// </summary>
    public const string ClaimLockShared = """
        SELECT id FROM keel_claimed_executions
        WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id
        LOCK IN SHARE MODE
        """;

    /// <summary>Appends a log line of a run, after <see cref="ClaimLockShared"/>.</summary>
    public const string LogInsert = "INSERT INTO keel_job_logs (job_id, attempt, logged_at, level, message) VALUES (@job_id, @attempt, @logged_at, @level, @message)";

    /// <summary>Stores a run's result, after <see cref="ClaimLockShared"/>.</summary>
    public const string ResultSave = "UPDATE keel_jobs SET result = @result WHERE id = @job_id";

    /// <summary>Stores the checkpoint, after <see cref="ClaimLockShared"/>.</summary>
    public const string CheckpointSave = "UPDATE keel_jobs SET checkpoint = @checkpoint WHERE id = @job_id";
}

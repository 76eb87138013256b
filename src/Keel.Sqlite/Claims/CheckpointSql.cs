namespace Keel.Sqlite;

/// <summary>The SQL of checkpoints on SQLite: a running job's saved state, written with the job under its claim.</summary>
internal static class CheckpointSql
{
    /// <summary>Whether the process holds the claim (inside the write transaction that follows it).</summary>
    public const string ClaimHeldForWrite = "SELECT EXISTS (SELECT 1 FROM keel_claimed_executions WHERE id = @claim_id AND job_id = @job_id AND process_id = @process_id)";

    /// <summary>Appends a log line of a run (after <see cref="ClaimHeldForWrite"/>).</summary>
    public const string LogInsert = "INSERT INTO keel_job_logs (job_id, attempt, logged_at, level, message) VALUES (@job_id, @attempt, @logged_at, @level, @message)";

    /// <summary>Stores a run's result only while the process holds the claim.</summary>
    public const string ResultSave = """
        UPDATE keel_jobs SET result = @result
        WHERE id = @job_id
          AND EXISTS (SELECT 1 FROM keel_claimed_executions c WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id)
        """;

    /// <summary>Records a run's progress on its claim, only while the process holds it.</summary>
    public const string ProgressReport = """
        UPDATE keel_claimed_executions SET progress = @progress, progress_message = @message, progress_at = @now
        WHERE id = @claim_id AND process_id = @process_id
        """;

    /// <summary>Stores a checkpoint only while the process holds the claim (<c>BEGIN IMMEDIATE</c> keeps a prune out meanwhile).</summary>
    public const string CheckpointSave = """
        UPDATE keel_jobs SET checkpoint = @checkpoint
        WHERE id = @job_id
          AND EXISTS (SELECT 1 FROM keel_claimed_executions c WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id)
        """;
}

namespace Keel.PostgreSql;

/// <summary>The SQL of checkpoints on PostgreSQL: a running job's saved state, written with the job under its claim.</summary>
internal static class CheckpointSql
{
    /// <summary>Appends a run's log lines (arrays of times, levels, messages) only while the process holds the claim (locked FOR SHARE).</summary>
    public const string LogsAppend = """
        WITH held AS (
            SELECT c.job_id, c.attempt FROM keel_claimed_executions c
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id
            FOR SHARE
        ),
        written AS (
            INSERT INTO keel_job_logs (job_id, attempt, logged_at, level, message)
            SELECT held.job_id, held.attempt, l.logged_at, l.level, l.message
            FROM held, unnest(@logged_at, @level, @message) AS l(logged_at, level, message)
        )
        SELECT count(*) FROM held
        """;

    /// <summary>Stores a run's result only while the process holds the claim (locked FOR SHARE in the same statement).</summary>
    public const string ResultSave = """
        WITH held AS (
            SELECT c.job_id FROM keel_claimed_executions c
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id
            FOR SHARE
        )
        UPDATE keel_jobs j SET result = @result
        FROM held
        WHERE j.id = held.job_id
        """;

    /// <summary>Records a run's progress on its claim, only while the process holds it.</summary>
    public const string ProgressReport = """
        UPDATE keel_claimed_executions SET progress = @progress, progress_message = @message, progress_at = coalesce(@now, now())
        WHERE id = @claim_id AND process_id = @process_id
        """;

    /// <summary>
    /// Stores a checkpoint only while the process holds the claim: the claim row is locked (FOR SHARE) in the same
    /// statement, so a prune or release that would delete it waits for this write, and one that committed first leaves
    /// nothing to lock. Returns the rows written (0 or 1).
    /// </summary>
    public const string CheckpointSave = """
        WITH held AS (
            SELECT c.job_id FROM keel_claimed_executions c
            WHERE c.id = @claim_id AND c.job_id = @job_id AND c.process_id = @process_id
            FOR SHARE
        )
        UPDATE keel_jobs j SET checkpoint = @checkpoint
        FROM held
        WHERE j.id = held.job_id
        """;
}

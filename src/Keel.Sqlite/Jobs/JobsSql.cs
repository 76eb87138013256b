namespace Keel.Sqlite;

/// <summary>The SQL of <c>keel_jobs</c> on SQLite: inserts with their uniqueness keys, reads with their history. Times are Unix microseconds.</summary>
internal static class JobsSql
{
    /// <summary>The job holding a uniqueness key, if any.</summary>
    public const string UniqueKeyOwner = "SELECT job_id FROM keel_unique_keys WHERE key = @key";

    /// <summary>Gives a job its uniqueness key (nothing when another job holds it).</summary>
    public const string UniqueKeyTake = "INSERT OR IGNORE INTO keel_unique_keys (key, job_id) VALUES (@key, @job_id)";

    /// <summary>Frees the uniqueness key a job holds.</summary>
    public const string UniqueKeyFree = "DELETE FROM keel_unique_keys WHERE job_id = @job_id";

    /// <summary>Marks a job discarded (its execution row goes separately).</summary>
    public const string JobDiscard = "UPDATE keel_jobs SET discarded_at = @now WHERE id = @job_id";
}

namespace Keel.MySql;

/// <summary>
/// What a MariaDB/MySQL connection runs on its own: the start of every unit of work. The database clock is
/// authoritative (leases are measured in it), so each unit takes the time once, into the session variable
/// <c>@keel_now</c> (microseconds since the Unix epoch, UTC), unless the caller pins it with <c>@now</c>; every
/// statement after it reads <c>@keel_now</c>, so one transaction sees one time, as PostgreSQL's <c>now()</c> does.
/// </summary>
internal static class ConnectionSql
{
    /// <summary>The database clock in Keel's encoding: microseconds since 1970-01-01 UTC, free of the session's time zone.</summary>
    public const string DatabaseNow = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))";

    /// <summary>Takes the unit's time: the caller's <c>@now</c>, else the database clock.</summary>
    public const string NowTake = "SET @keel_now = coalesce(@now, " + DatabaseNow + ");\n";

    /// <summary>
    /// Begins a write transaction, sent in front of its first statement (no round trip of its own). READ COMMITTED:
    /// locking reads see the newest committed rows and take no gap locks, so claimers, enqueuers and heartbeats do
    /// not queue behind each other's ranges.
    /// </summary>
    public const string TransactionBegin = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;\nSTART TRANSACTION;\n" + NowTake;

    /// <summary>The unit's time, for a decision made in code.</summary>
    public const string NowRead = "SELECT @keel_now";

    /// <summary>Commits, appended to the last statement of a unit of work when nothing is read after it.</summary>
    public const string TransactionCommit = ";\nCOMMIT";

    /// <summary>Commits a unit of work on its own.</summary>
    public const string Commit = "COMMIT";

    /// <summary>Undoes a unit of work that failed.</summary>
    public const string Rollback = "ROLLBACK";

    /// <summary>Marks where a job insert may be undone (its uniqueness key was taken meanwhile).</summary>
    public const string JobSavepoint = "SAVEPOINT keel_job";

    /// <summary>Undoes a job insert back to <see cref="JobSavepoint"/>.</summary>
    public const string JobSavepointRollback = "ROLLBACK TO SAVEPOINT keel_job";
}

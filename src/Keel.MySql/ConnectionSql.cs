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

    /// <summary>The database clock, read on its own (a caller's connection, which may not allow user variables).</summary>
    public const string DatabaseNowRead = "SELECT " + DatabaseNow;

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

    /// <summary>
    /// One statement per id, in one batch. A DML or locking statement over a list of keys is written as point
    /// statements (<c>… WHERE id = 42</c>), which InnoDB always serves by the key and so lock only their own rows: with
    /// <c>IN (…)</c> the optimizer may scan the table (it does on small tables, whatever index is forced) and wait for
    /// rows other transactions hold, which deadlocks two claimers.
    /// </summary>
    /// <param name="ids">The keys.</param>
    /// <param name="statement">The statement for one key (its text, without the closing semicolon).</param>
    /// <returns>The statements.</returns>
    public static string Each(IEnumerable<long> ids, Func<string, string> statement)
        => EachOf(ids, id => statement(id.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>One statement per key, in one batch, as <see cref="Each(IEnumerable{long}, Func{string, string})"/>.</summary>
    /// <typeparam name="TKey">The key (whose statement writes its numbers invariantly).</typeparam>
    /// <param name="keys">The keys.</param>
    /// <param name="statement">The statement for one key (its text, without the closing semicolon).</param>
    /// <returns>The statements.</returns>
    public static string EachOf<TKey>(IEnumerable<TKey> keys, Func<TKey, string> statement)
        => string.Concat(keys.Select(key => statement(key) + ";\n"));

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

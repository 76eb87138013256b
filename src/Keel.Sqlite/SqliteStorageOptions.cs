namespace Keel.Sqlite;

/// <summary>Where the SQLite database lives and how it is opened.</summary>
public sealed class SqliteStorageOptions
{
    /// <summary>
    /// A file path (<c>keel.db</c>) or a full Microsoft.Data.Sqlite connection string (<c>Data Source=keel.db;…</c>).
    /// </summary>
    public string ConnectionString { get; set; } = "keel.db";

    /// <summary>How long a statement waits for another process's write lock before giving up. Default 30 s.</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// <c>synchronous=NORMAL</c> (the default, false here) survives process crashes with WAL but may lose the last
    /// commits on power loss; set true for <c>synchronous=FULL</c>, which survives power loss at some speed cost.
    /// </summary>
    public bool SynchronousFull { get; set; }
}

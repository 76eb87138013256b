using System.Globalization;

namespace Keel.Sqlite;

/// <summary>The SQL every SQLite connection runs when it opens.</summary>
internal static class ConnectionSql
{
    /// <summary>
    /// The settings of a new connection: a read first (it opens the WAL index, so a database that can only be read is
    /// found out here, as the first statement of the batch, whose error is raised, unlike a later one's), then how long
    /// to wait for another process's write lock and how durable a commit is. PRAGMA takes no parameters.
    /// </summary>
    /// <param name="busyTimeoutMs">The busy timeout in milliseconds.</param>
    /// <param name="synchronousFull">FULL instead of NORMAL.</param>
    /// <returns>The statements.</returns>
    public static string Pragmas(long busyTimeoutMs, bool synchronousFull)
        => string.Create(CultureInfo.InvariantCulture, $"SELECT 1 FROM sqlite_master LIMIT 1; PRAGMA busy_timeout = {busyTimeoutMs}; PRAGMA synchronous = {(synchronousFull ? "FULL" : "NORMAL")};");
}

using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>The read-only fallback, SQLite's own: a database file in a folder this process cannot write is opened as immutable, so reading works; a write fails as read-only, said as the permission problem it is.</summary>
public sealed partial class SqliteStorage
{
    /// <summary>
    /// A WAL database is read through its -shm file, which SQLite creates beside it; in a folder this process cannot
    /// write, with no -wal file left behind, it cannot be created, and no process can be writing the database either
    /// (a writer needs that -wal file). So the file is opened read-only as immutable, which needs neither: the reading
    /// commands and the read-only dashboard work, and a write fails as read-only.
    /// </summary>
    private bool CanOnlyBeRead() => File.Exists(DatabasePath) && !File.Exists(DatabasePath + "-wal");

    private async Task<SqliteConnection> OpenImmutableAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_immutableConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await ExecuteAsync(connection, null, _pragmas, cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>"Attempt to write a readonly database", said as the permission problem it is, naming the file or folder.</summary>
    private KeelDatabaseReadOnlyException ReadOnly(SqliteException e)
    {
        var path = Path.GetFullPath(DatabasePath);
        var folder = Path.GetDirectoryName(path) ?? ".";
        var user = Environment.UserName;
        string problem;
        try
        {
            using (File.Open(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
            {
            }

            problem = $"its folder {folder} is not writable for this user ({user}); SQLite writes the -wal and -shm files beside the database: give the user write permission on the folder";
        }
        catch (UnauthorizedAccessException)
        {
            problem = $"the file is not writable for this user ({user}): give the user write permission on it (and on its folder {folder}, for the -wal and -shm files)";
        }
        catch (IOException io)
        {
            problem = $"it cannot be opened for writing ({io.Message}); a read-only file system?";
        }

        return new KeelDatabaseReadOnlyException($"the SQLite database {path} is read-only: {problem}. Reading works; writing does not", e);
    }
}

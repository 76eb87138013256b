using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Schema migrations: the embedded <c>Migrations/NNNN_name.sql</c> scripts, applied in one write transaction.</summary>
public sealed partial class SqliteStorage
{
    private static readonly IReadOnlyList<MigrationScript> Migrations = MigrationScript.LoadEmbedded(typeof(SqliteStorage).Assembly);

    /// <inheritdoc />
    public int LatestSchemaVersion => Migrations.Count;

    /// <inheritdoc />
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(DatabasePath));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        await using var connection = await OpenAsync(cancellationToken);
        // WAL is a property of the file; it must be set outside a transaction and persists.
        try
        {
            await ExecuteAsync(connection, null, MigrationsSql.JournalModeWal, cancellationToken);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is ReadOnlyError)
        {
            throw ReadOnly(e);
        }

        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, MigrationsSql.MigrationTableCreate, cancellationToken);
        var current = Convert.ToInt32(await ScalarAsync(connection, transaction, MigrationsSql.MigrationVersionRead, cancellationToken), CultureInfo.InvariantCulture);
        if (current > LatestSchemaVersion)
        {
            throw MigrationScript.NewerThanCode("SQLite", current, LatestSchemaVersion);
        }

        foreach (var script in Migrations.Where(m => m.Version > current))
        {
            await ExecuteAsync(connection, transaction, script.Sql, cancellationToken);
            await using var record = Command(connection, transaction, MigrationsSql.MigrationRecord);
            record.Parameters.AddWithValue("@version", script.Version);
            record.Parameters.AddWithValue("@name", script.Name);
            record.Parameters.AddWithValue("@now", Micros(null));
            await record.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            await transaction.CommitAsync(cancellationToken);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is ReadOnlyError)
        {
            throw ReadOnly(e);
        }
    }

    /// <inheritdoc />
    public async Task<int> SchemaVersionAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(DatabasePath))
        {
            return 0; // Opening would create an empty file; a missing database simply has no schema.
        }

        await using var connection = await OpenAsync(cancellationToken);
        var exists = Convert.ToInt64(await ScalarAsync(connection, null, MigrationsSql.SchemaTableExists, cancellationToken), CultureInfo.InvariantCulture);
        return exists == 0
            ? 0
            : Convert.ToInt32(await ScalarAsync(connection, null, MigrationsSql.MigrationVersionRead, cancellationToken), CultureInfo.InvariantCulture);
    }
}

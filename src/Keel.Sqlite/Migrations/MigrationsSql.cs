namespace Keel.Sqlite;

/// <summary>The SQL of schema migrations on SQLite (the scripts themselves are the embedded <c>Migrations/*.sql</c>).</summary>
internal static class MigrationsSql
{
    /// <summary>Makes the file a WAL database: a property of the file, set outside a transaction, that persists.</summary>
    public const string JournalModeWal = "PRAGMA journal_mode = WAL";

    /// <summary>Creates the table of applied migrations when it is missing.</summary>
    public const string MigrationTableCreate = """
        CREATE TABLE IF NOT EXISTS keel_schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT    NOT NULL,
            applied_at INTEGER NOT NULL
        )
        """;

    /// <summary>The newest applied version; 0 when none is.</summary>
    public const string MigrationVersionRead = "SELECT coalesce(max(version), 0) FROM keel_schema_migrations";

    /// <summary>Records one applied migration.</summary>
    public const string MigrationRecord = "INSERT INTO keel_schema_migrations (version, name, applied_at) VALUES (@version, @name, @now)";

    /// <summary>1 when the table of applied migrations exists, else 0.</summary>
    public const string SchemaTableExists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'keel_schema_migrations'";
}

namespace Keel.MySql;

/// <summary>The SQL of schema migrations on MariaDB/MySQL (the scripts themselves are the embedded <c>Migrations/*.sql</c>).</summary>
internal static class MigrationsSql
{
    /// <summary>
    /// Serializes migrators of one database: a named lock held by this session until <see cref="MigrationUnlock"/>
    /// (or the session ends). Waits up to <c>@timeout</c> seconds; 1 when taken.
    /// </summary>
    public const string MigrationLock = "SELECT GET_LOCK(CONCAT('keel_migrate:', DATABASE()), @timeout)";

    /// <summary>Releases <see cref="MigrationLock"/>.</summary>
    public const string MigrationUnlock = "SELECT RELEASE_LOCK(CONCAT('keel_migrate:', DATABASE()))";

    /// <summary>Creates the table of applied migrations when it is missing.</summary>
    public const string MigrationTableCreate = """
        CREATE TABLE IF NOT EXISTS keel_schema_migrations (
            version    INT          NOT NULL PRIMARY KEY,
            name       VARCHAR(255) NOT NULL,
            applied_at BIGINT       NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
        """;

    /// <summary>The newest applied version; 0 when none is.</summary>
    public const string MigrationVersionRead = "SELECT coalesce(max(version), 0) FROM keel_schema_migrations";

    /// <summary>Records one applied migration.</summary>
    public const string MigrationRecord = "INSERT INTO keel_schema_migrations (version, name, applied_at) VALUES (@version, @name, @keel_now)";

    /// <summary>1 when the table of applied migrations exists in the connection's database, else 0.</summary>
    public const string SchemaTableExists = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'keel_schema_migrations'";
}

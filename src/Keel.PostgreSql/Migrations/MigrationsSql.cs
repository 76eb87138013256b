namespace Keel.PostgreSql;

/// <summary>The SQL of schema migrations on PostgreSQL (the scripts themselves are the embedded <c>Migrations/*.sql</c>).</summary>
internal static class MigrationsSql
{
    /// <summary>The advisory lock key serializing concurrent migrators ("keel" + schema, as a fixed bigint).</summary>
    public const long MigrationLockKey = 0x4B45454C_00000001;

    /// <summary>Waits for the migration lock (<c>@key</c>) until the transaction ends.</summary>
    public const string MigrationLock = "SELECT pg_advisory_xact_lock(@key)";

    /// <summary>Creates the table of applied migrations when it is missing.</summary>
    public const string MigrationTableCreate = """
        CREATE TABLE IF NOT EXISTS keel_schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """;

    /// <summary>The newest applied version; 0 when none is.</summary>
    public const string MigrationVersionRead = "SELECT coalesce(max(version), 0) FROM keel_schema_migrations";

    /// <summary>Records one applied migration.</summary>
    public const string MigrationRecord = "INSERT INTO keel_schema_migrations (version, name) VALUES (@version, @name)";

    /// <summary>True when the table of applied migrations exists.</summary>
    public const string SchemaTableExists = "SELECT to_regclass('keel_schema_migrations') IS NOT NULL";
}

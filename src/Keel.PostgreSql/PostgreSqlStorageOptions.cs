namespace Keel.PostgreSql;

/// <summary>How to reach the PostgreSQL database that holds Keel's tables.</summary>
public sealed class PostgreSqlStorageOptions
{
    /// <summary>
    /// An Npgsql connection string, e.g. <c>Host=db;Database=app;Username=app;Password=…</c>. Connections are
    /// pooled; size the pool (<c>Maximum Pool Size</c>) for the workers' claim, complete and heartbeat traffic.
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;
}

namespace Keel.PostgreSql;

/// <summary>How to reach the PostgreSQL database that holds Keel's tables.</summary>
public sealed class PostgreSqlStorageOptions
{
    /// <summary>
    /// An Npgsql connection string, e.g. <c>Host=db;Database=app;Username=app;Password=…</c>. Connections are
    /// pooled; size the pool (<c>Maximum Pool Size</c>) for the workers' claim, complete and heartbeat traffic.
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>
    /// How processes prove they are alive beyond their lease (<c>Keel:PostgreSql:Liveness</c>). Default
    /// <see cref="PostgreSqlLiveness.Auto"/>: a session lock, unless a connection pooler answers for the server.
    /// </summary>
    public PostgreSqlLiveness Liveness { get; set; } = PostgreSqlLiveness.Auto;
}

/// <summary>How PostgreSQL processes prove they are alive beyond their lease.</summary>
public enum PostgreSqlLiveness
{
    /// <summary>
    /// <see cref="Session"/>, unless the first connection shows a pooler between Keel and the server (the backend pid
    /// the server reports is not the one the connection was given): then <see cref="Lease"/>, with a warning at start.
    /// </summary>
    Auto,

    /// <summary>
    /// Each process holds a session-level advisory lock on a dedicated connection; a lock that stays free for
    /// <c>Keel:SessionGracePeriod</c> lets others recover its claims within seconds of a kill -9 on another host.
    /// Needs a direct connection or a session-mode pooler.
    /// </summary>
    Session,

    /// <summary>
    /// Only the lease (and, on the same host, the pid) speaks for a process: a process on another host that dies is
    /// recovered when its lease expires. What a transaction-mode pooler (PgBouncer) needs.
    /// </summary>
    Lease,
}

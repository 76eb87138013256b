namespace Keel.PostgreSql;

/// <summary>The SQL of PostgreSQL connections themselves.</summary>
internal static class ConnectionSql
{
    /// <summary>
    /// The backend this connection runs on, as the server sees it: a pooler hands the client a backend key of its own,
    /// so a different pid than the connection was given means a pooler answers.
    /// </summary>
    public const string BackendPid = "SELECT pg_backend_pid()";
}

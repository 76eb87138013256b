namespace Keel.MySql;

/// <summary>How to reach the MariaDB or MySQL database that holds Keel's tables.</summary>
public sealed class MySqlStorageOptions
{
    /// <summary>
    /// A MySqlConnector connection string, e.g. <c>Server=db;Database=app;User ID=app;Password=…</c>. Connections are
    /// pooled; size the pool (<c>Maximum Pool Size</c>) for the workers' claim, complete and heartbeat traffic. Keel
    /// turns on <c>Allow User Variables</c> (its statements keep the transaction's time in <c>@keel_now</c>).
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;
}

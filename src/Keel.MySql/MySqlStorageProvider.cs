using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>
/// Opens MariaDB or MySQL from <c>Keel:Database</c> or <c>--database</c>: a
/// <c>mysql://user:password@host:port/database?key=value</c> (or <c>mariadb://…</c>) URI, the query's keys being
/// MySqlConnector's. A <c>Server=…</c> connection string is not accepted there (PostgreSQL's and SQL Server's drivers
/// read it too); <c>UseMySql(connectionString)</c> takes any. Registered by <c>UseMySql()</c>.
/// </summary>
internal sealed class MySqlStorageProvider : IKeelStorageProvider
{
    public string Engine => "mysql";

    public IReadOnlyList<string> Schemes { get; } = ["mysql", "mariadb"];

    public IKeelStorage Create(KeelDatabaseSetting setting, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(setting);
        if (setting.Form != KeelDatabaseForm.Uri)
        {
            throw new ArgumentException("a MariaDB/MySQL database is given as a mysql://user:password@host:port/database URI");
        }

        return new MySqlStorage(new MySqlStorageOptions { ConnectionString = ConnectionStringOf(setting.ParseUri()) });
    }

    /// <summary>The MySqlConnector connection string of a <c>mysql://</c> URI.</summary>
    internal static string ConnectionStringOf(KeelDatabaseUri uri)
    {
        var builder = new MySqlConnectionStringBuilder { Server = uri.Host, Database = uri.Database, UserID = uri.Username, Password = uri.Password };
        if (uri.Port is { } port)
        {
            builder.Port = checked((uint)port);
        }

        foreach (var (key, value) in uri.Parameters)
        {
            builder[key] = value; // An unknown key throws ArgumentException, reported naming the setting.
        }

        return builder.ConnectionString;
    }
}

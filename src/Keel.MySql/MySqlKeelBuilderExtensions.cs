namespace Keel.MySql;

/// <summary>Chooses MariaDB or MySQL as Keel's store, or makes it available to <c>Keel:Database</c> and <c>--database</c>.</summary>
public static class MySqlKeelBuilderExtensions
{
    /// <summary>
    /// Makes MariaDB/MySQL available without choosing a database: <c>Keel:Database</c>, <c>--database</c> or
    /// <c>KEEL_DATABASE</c> may then be a <c>mysql://user:password@host:port/database</c> (or <c>mariadb://…</c>) URI.
    /// </summary>
    /// <param name="builder">The Keel builder.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UseMySql(this IKeelBuilder builder)
        => builder.AddStorageProvider(new MySqlStorageProvider());

    /// <summary>Stores jobs in a MariaDB (10.6 or later) or MySQL 8 database (Keel's tables are created by migration).</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">A MySqlConnector connection string, e.g. <c>Server=db;Database=app;User ID=app;Password=…</c>.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UseMySql(this IKeelBuilder builder, string connectionString)
        => builder.UseMySql(connectionString, static _ => { });

    /// <summary>Stores jobs in a MariaDB or MySQL database, with more settings.</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">A MySqlConnector connection string.</param>
    /// <param name="configure">Adjusts the store's options.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UseMySql(this IKeelBuilder builder, string connectionString, Action<MySqlStorageOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new ArgumentException("the MySQL connection string is empty", nameof(connectionString));
        }

        var options = new MySqlStorageOptions { ConnectionString = connectionString };
        configure(options);
        return builder.UseMySql().UseStorage(_ => new MySqlStorage(options));
    }
}

namespace Keel.PostgreSql;

/// <summary>Chooses PostgreSQL as Keel's store, or makes it available to <c>Keel:Database</c> and <c>--database</c>.</summary>
public static class PostgreSqlKeelBuilderExtensions
{
    /// <summary>
    /// Makes PostgreSQL available without choosing a database: <c>Keel:Database</c>, <c>--database</c> or
    /// <c>KEEL_DATABASE</c> may then be an Npgsql connection string with <c>Host=</c> or a <c>postgres://</c> URI, and
    /// <c>Keel:PostgreSql:Liveness</c> applies to it.
    /// </summary>
    /// <param name="builder">The Keel builder.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UsePostgreSql(this IKeelBuilder builder)
        => builder.AddStorageProvider(new PostgreSqlStorageProvider());

    /// <summary>Stores jobs in a PostgreSQL database (Keel's tables are created by migration); <c>--database</c> may still point elsewhere.</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">An Npgsql connection string, e.g. <c>Host=db;Database=app;Username=app</c>.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UsePostgreSql(this IKeelBuilder builder, string connectionString)
        => builder.UsePostgreSql(connectionString, static _ => { });

    /// <summary>Stores jobs in a PostgreSQL database, with more settings (liveness behind a connection pooler, say).</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="configure">Adjusts the store's options.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UsePostgreSql(this IKeelBuilder builder, string connectionString, Action<PostgreSqlStorageOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new ArgumentException("the PostgreSQL connection string is empty", nameof(connectionString));
        }

        var options = new PostgreSqlStorageOptions { ConnectionString = connectionString };
        configure(options);
        return builder.UsePostgreSql().UseStorage(_ => new PostgreSqlStorage(options));
    }
}

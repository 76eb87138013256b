namespace Keel.PostgreSql;

/// <summary>Chooses PostgreSQL as Keel's store.</summary>
public static class PostgreSqlKeelBuilderExtensions
{
    /// <summary>Stores jobs in a PostgreSQL database (Keel's tables are created by migration).</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">An Npgsql connection string, e.g. <c>Host=db;Database=app;Username=app</c>.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UsePostgreSql(this IKeelBuilder builder, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new ArgumentException("the PostgreSQL connection string is empty", nameof(connectionString));
        }

        return builder.UseStorage(_ => new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = connectionString }));
    }
}

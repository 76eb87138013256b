using Microsoft.Extensions.DependencyInjection;

namespace Keel.Sqlite;

/// <summary>Chooses SQLite as Keel's store.</summary>
public static class SqliteKeelBuilderExtensions
{
    /// <summary>Stores jobs in a SQLite database file (created on first migration).</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">A file path such as <c>keel.db</c>, or a full connection string.</param>
    /// <param name="configure">Further SQLite settings.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UseSqlite(this IKeelBuilder builder, string connectionString, Action<SqliteStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new SqliteStorageOptions { ConnectionString = connectionString };
        configure?.Invoke(options);
        return builder.UseStorage(services => new SqliteStorage(options, services.GetService<TimeProvider>()));
    }
}

using Microsoft.Extensions.DependencyInjection;

namespace Keel.Sqlite;

/// <summary>Chooses SQLite as Keel's store, or makes it available to <c>Keel:Database</c> and <c>--database</c>.</summary>
public static class SqliteKeelBuilderExtensions
{
    /// <summary>
    /// Makes SQLite available without choosing a database: <c>Keel:Database</c>, <c>--database</c> or
    /// <c>KEEL_DATABASE</c> may then be a file path (<c>keel.db</c>), <c>sqlite:PATH</c> or <c>Data Source=PATH</c>.
    /// </summary>
    /// <param name="builder">The Keel builder.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UseSqlite(this IKeelBuilder builder)
        => builder.AddStorageProvider(new SqliteStorageProvider());

    /// <summary>Stores jobs in a SQLite database file (created on first migration); <c>--database</c> may still point elsewhere.</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="connectionString">A file path such as <c>keel.db</c>, or a full connection string.</param>
    /// <param name="configure">Further SQLite settings.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder UseSqlite(this IKeelBuilder builder, string connectionString, Action<SqliteStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new SqliteStorageOptions { ConnectionString = connectionString };
        configure?.Invoke(options);
        return builder.UseSqlite().UseStorage(services => new SqliteStorage(options, services.GetService<TimeProvider>()));
    }
}

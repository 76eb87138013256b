using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Hosting;

/// <summary>Builds the store named by <see cref="KeelOptions.Database"/> when code chose none.</summary>
public static class StorageFromOptions
{
    /// <summary>
    /// True when <paramref name="database"/> is a PostgreSQL connection string (it has a <c>Host=</c> or
    /// <c>Server=</c> key) rather than a SQLite file path or connection string.
    /// </summary>
    /// <param name="database">The setting.</param>
    /// <returns>Whether it names PostgreSQL.</returns>
    public static bool IsPostgreSql(string database)
    {
        ArgumentNullException.ThrowIfNull(database);
        return database.Split(';').Any(part => part.Trim().StartsWith("Host=", StringComparison.OrdinalIgnoreCase) || part.Trim().StartsWith("Server=", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Creates the store for a database setting.</summary>
    /// <param name="database">A SQLite path or a PostgreSQL connection string.</param>
    /// <param name="timeProvider">The clock, for SQLite.</param>
    /// <returns>The store.</returns>
    public static IKeelStorage Create(string database, TimeProvider? timeProvider = null)
    {
        if (string.IsNullOrWhiteSpace(database))
        {
            throw new ArgumentException("no Keel database is configured: set Keel:Database to a SQLite file path or a PostgreSQL connection string, or call UseSqlite/UsePostgreSql", nameof(database));
        }

        return IsPostgreSql(database)
            ? new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = database })
            : new SqliteStorage(new SqliteStorageOptions { ConnectionString = database }, timeProvider);
    }

    internal static IKeelStorage Create(KeelOptions options, IServiceProvider services)
    {
        var database = options.Database ?? string.Empty;
        var liveness = services.GetService<Microsoft.Extensions.Configuration.IConfiguration>()?[LivenessKey];
        if (string.IsNullOrWhiteSpace(liveness) || string.IsNullOrWhiteSpace(database) || !IsPostgreSql(database))
        {
            return Create(database, services.GetService<TimeProvider>());
        }

        if (!Enum.TryParse<PostgreSqlLiveness>(liveness, ignoreCase: true, out var mode) || !Enum.IsDefined(mode))
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(
                LivenessKey,
                typeof(PostgreSqlStorageOptions),
                [$"{LivenessKey} must be Auto, Session or Lease (was '{liveness}')"]);
        }

        return new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = database, Liveness = mode });
    }

    /// <summary>The configuration key of <see cref="PostgreSqlStorageOptions.Liveness"/>.</summary>
    internal const string LivenessKey = "Keel:PostgreSql:Liveness";
}

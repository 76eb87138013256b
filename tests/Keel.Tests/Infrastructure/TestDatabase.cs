using System.Data.Common;
using System.Globalization;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Keel.Tests.Infrastructure;

/// <summary>The engines every conformance and end-to-end test runs against.</summary>
public enum Engine
{
    Sqlite,
    PostgreSql,
    MySql,
}

/// <summary>A fresh, migrated database of one engine, with raw SQL access for assertions.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private static readonly string RunFolder = Path.Combine(Path.GetTempPath(), "keel-tests-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));

    private TestDatabase(Engine engine, string connectionString, IKeelStorage storage)
    {
        Engine = engine;
        ConnectionString = connectionString;
        Storage = storage;
    }

    public Engine Engine { get; }

    /// <summary>On a server of the test's own, which goes with its data: nothing to drop on the shared one.</summary>
    private bool _ownServer;

    /// <summary>A SQLite path, or a PostgreSQL or MySqlConnector connection string: what the store is built from.</summary>
    public string ConnectionString { get; }

    /// <summary>
    /// What <c>Keel:Database</c> or <c>--database</c> holds for this database: the connection string, or for MariaDB a
    /// <c>mysql://</c> URI (a <c>Server=</c> string names no one engine and is refused there).
    /// </summary>
    public string Setting => Engine == Engine.MySql ? MySqlUri(ConnectionString) : ConnectionString;

    private static string MySqlUri(string connectionString)
    {
        var b = new MySqlConnectionStringBuilder(connectionString);
        return $"mysql://{Uri.EscapeDataString(b.UserID)}:{Uri.EscapeDataString(b.Password)}@{b.Server}:{b.Port.ToString(CultureInfo.InvariantCulture)}/{Uri.EscapeDataString(b.Database)}";
    }

    public IKeelStorage Storage { get; }

    /// <summary>A fresh migrated database on a server of the test's own (one it may stop and restart).</summary>
    public static async Task<TestDatabase> CreateOnAsync(MariaDbServer server)
    {
        var connectionString = await server.CreateDatabaseAsync();
        var database = new TestDatabase(Engine.MySql, connectionString, new MySqlStorage(new MySqlStorageOptions { ConnectionString = connectionString })) { _ownServer = true };
        await database.Storage.MigrateAsync(CancellationToken.None);
        return database;
    }

    /// <summary>A fresh migrated database on a server of the test's own (one it may stop and restart).</summary>
    public static async Task<TestDatabase> CreateOnAsync(PostgresServer server)
    {
        var connectionString = await server.CreateDatabaseAsync();
        var database = new TestDatabase(Engine.PostgreSql, connectionString, new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = connectionString }));
        await database.Storage.MigrateAsync(CancellationToken.None);
        return database;
    }

    /// <summary>
    /// An existing, migrated PostgreSQL database reached through <paramref name="connectionString"/> (a proxy in
    /// front of a server that fails over, say). Disposing it closes its store and nothing else.
    /// </summary>
    public static TestDatabase ForPostgreSql(string connectionString)
        => new(Engine.PostgreSql, connectionString, new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = connectionString }));

    public static async Task<TestDatabase> CreateAsync(Engine engine, bool migrate = true, TimeProvider? timeProvider = null)
    {
        TestDatabase database;
        if (engine == Engine.Sqlite)
        {
            Directory.CreateDirectory(RunFolder);
            var path = Path.Combine(RunFolder, Guid.NewGuid().ToString("N") + ".db");
            database = new TestDatabase(engine, path, new SqliteStorage(new SqliteStorageOptions { ConnectionString = path }, timeProvider));
        }
        else if (engine == Engine.MySql)
        {
            var server = await SharedMariaDb.GetAsync();
            var connectionString = await server.CreateDatabaseAsync();
            database = new TestDatabase(engine, connectionString, new MySqlStorage(new MySqlStorageOptions { ConnectionString = connectionString }));
        }
        else
        {
            var server = await SharedPostgres.GetAsync();
            var connectionString = await server.CreateDatabaseAsync();
            database = new TestDatabase(engine, connectionString, new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = connectionString }));
        }

        if (migrate)
        {
            await database.Storage.MigrateAsync(CancellationToken.None);
        }

        return database;
    }

    /// <summary>A separate store on the same database, as another host would have (a host disposes the store it owns).</summary>
    public IKeelStorage NewStorage() => Engine switch
    {
        Engine.Sqlite => new SqliteStorage(new SqliteStorageOptions { ConnectionString = ConnectionString }),
        Engine.MySql => new MySqlStorage(new MySqlStorageOptions { ConnectionString = ConnectionString }),
        _ => new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = ConnectionString }),
    };

    public async Task<DbConnection> OpenAsync()
    {
        DbConnection connection = Engine switch
        {
            Engine.Sqlite => new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = ConnectionString, ForeignKeys = true, DefaultTimeout = 30 }.ToString()),
            Engine.MySql => new MySqlConnection(ConnectionString),
            _ => new NpgsqlConnection(ConnectionString),
        };
        await connection.OpenAsync();
        return connection;
    }

    public async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    public async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteNonQueryAsync();
    }

    /// <summary>A SQL timestamp literal for "now plus offset" in this engine's encoding.</summary>
    public string TimeLiteral(DateTimeOffset value) => Engine is Engine.Sqlite or Engine.MySql
        ? TimeEncoding.ToMicros(value).ToString(CultureInfo.InvariantCulture)
        : "'" + value.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00'";

    public async ValueTask DisposeAsync()
    {
        // Closes the PostgreSQL store's dedicated process connections (and its pool) so tests do not pile up
        // sessions on the shared server.
        if (Storage is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        if (Engine == Engine.MySql && !_ownServer)
        {
            // Drop the database so its tables' files do not pile up on the shared server over a run.
            var server = await SharedMariaDb.GetAsync();
            await server.DropDatabaseAsync(new MySqlConnectionStringBuilder(ConnectionString).Database);
        }

        if (Engine == Engine.Sqlite)
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
            {
                try
                {
                    File.Delete(ConnectionString + suffix);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}

/// <summary>One throwaway PostgreSQL server for the whole test run (or the one named by KEEL_TEST_POSTGRES).</summary>
public static class SharedPostgres
{
    private static readonly Lazy<Task<PostgresServer>> Server = new(() => PostgresServer.StartAsync());

    public static Task<PostgresServer> GetAsync() => Server.Value;
}

/// <summary>One throwaway MariaDB server for the whole test run (or the one named by KEEL_TEST_MYSQL).</summary>
public static class SharedMariaDb
{
    private static readonly Lazy<Task<MariaDbServer>> Server = new(() => MariaDbServer.StartAsync());

    public static Task<MariaDbServer> GetAsync() => Server.Value;
}

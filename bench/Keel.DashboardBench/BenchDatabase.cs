using System.Data.Common;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Keel.DashboardBench;

/// <summary>A fresh, migrated database of one engine, with a raw connection for the bulk load.</summary>
internal sealed class BenchDatabase : IAsyncDisposable
{
    private readonly PostgresServer? _server;
    private readonly string? _folder;

    private BenchDatabase(string database, IKeelStorage storage, DbConnection connection, PostgresServer? server, string? folder)
    {
        Database = database;
        Storage = storage;
        Connection = connection;
        _server = server;
        _folder = folder;
    }

    public string Database { get; }

    public IKeelStorage Storage { get; }

    public DbConnection Connection { get; }

    public static async Task<BenchDatabase> CreateAsync(string engine)
    {
        PostgresServer? server = null;
        string? folder = null;
        string database;
        DbConnection connection;
        if (engine == "sqlite")
        {
            folder = Directory.CreateTempSubdirectory("keel-dashboard-bench-").FullName;
            database = Path.Combine(folder, "bench.db");
            connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, DefaultTimeout = 3600 }.ToString());
        }
        else
        {
            server = await PostgresServer.StartAsync();
            database = await server.CreateDatabaseAsync();
            connection = new NpgsqlConnection(database);
        }

        IKeelStorage storage = engine == "sqlite" ? new SqliteStorage(new SqliteStorageOptions { ConnectionString = database }) : new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = database });
        await storage.MigrateAsync(CancellationToken.None);
        await connection.OpenAsync();
        return new BenchDatabase(database, storage, connection, server, folder);
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        if (Storage is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_folder is not null)
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(_folder, recursive: true);
        }
    }
}

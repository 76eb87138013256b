using System.Globalization;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MySqlConnector;
using Npgsql;

namespace Keel.Bench;

/// <summary>One engine under test: hands out a fresh, empty database per run.</summary>
public abstract class BenchEngine : IAsyncDisposable
{
    public abstract string Name { get; }

    public bool IsPostgres => Name == "postgres";

    public bool IsMySql => Name == "mysql";

    /// <summary>How an idle worker learns of a job enqueued by another process (the latency scenario's first half).</summary>
    public string Pickup => IsPostgres
        ? "LISTEN/NOTIFY wakes the idle worker at the enqueuer's commit"
        : string.Create(CultureInfo.InvariantCulture, $"no NOTIFY on {(IsMySql ? "MariaDB" : "SQLite")}: the idle worker polls every {new WorkerOptions().PollingInterval.TotalMilliseconds:0} ms (Keel's default PollingInterval), so a job waits up to one interval; the same process wakes its workers at once");

    /// <summary>A fresh database (SQLite file path, PostgreSQL connection string, or a MariaDB <c>mysql://</c> URI).</summary>
    public abstract Task<string> NewDatabaseAsync();

    /// <summary>Removes a database handed out by <see cref="NewDatabaseAsync"/>.</summary>
    public abstract Task DropDatabaseAsync(string database);

    /// <summary>Engine version and the settings that matter for durability and speed.</summary>
    public abstract Task<IReadOnlyList<KeyValuePair<string, string>>> DescribeAsync();

    public abstract ValueTask DisposeAsync();

    /// <summary>The PostgreSQL server the bench started itself; null for SQLite, MariaDB and a server given by <c>--connection</c>.</summary>
    public virtual PostgresServer? Server => null;

    /// <summary>Runs <paramref name="sql"/> on <paramref name="database"/> (a connection of its own, no pool) and returns its first value as a number.</summary>
    public abstract Task<long> ScalarAsync(string database, string sql, CancellationToken ct = default);

    public static async Task<BenchEngine> CreateAsync(string name, string? connection)
        => name switch
        {
            "sqlite" => new SqliteEngine(),
            "postgres" => await PostgresEngine.StartAsync(connection),
            "mysql" => await MySqlEngine.StartAsync(connection),
            _ => throw new ArgumentException($"unknown engine '{name}': use sqlite, postgres or mysql"),
        };

    /// <summary>The bench's engine name (sqlite, postgres, mysql) of a database setting, read as Keel reads <c>Keel:Database</c>.</summary>
    public static string EngineOf(string database)
        => KeelDatabaseSetting.Parse(database, []).Engine switch
        {
            "postgresql" => "postgres",
            var engine => engine,
        };

    /// <summary>
    /// A host with Keel. <paramref name="processJobs"/> false gives a client-only host (it still migrates on start);
    /// otherwise <paramref name="workers"/> worker entries of <paramref name="threads"/> threads each, every other option
    /// at Keel's defaults (1 s polling, dispatcher on, maintenance on). <paramref name="claims"/>, if given, records every claim statement.
    /// </summary>
    public IHost BuildHost(string database, bool processJobs, int workers = 1, int threads = 10, ClaimStats? claims = null, int? claimAhead = null, bool? directHandOff = null)
        => BuildHost(Name, database, processJobs, workers, threads, claims, claimAhead, directHandOff);

    /// <inheritdoc cref="BuildHost(string, bool, int, int, ClaimStats?, int?, bool?)"/>
    /// <param name="engine">sqlite, postgres or mysql (<see cref="EngineOf"/>).</param>
    public static IHost BuildHost(string engine, string database, bool processJobs, int workers = 1, int threads = 10, ClaimStats? claims = null, int? claimAhead = null, bool? directHandOff = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddKeel(k =>
        {
            if (claims is not null)
            {
                k.UseStorage(sp => ClaimTimingProxy.Create(engine, database, sp, claims));
            }
            else if (engine == "postgres")
            {
                k.UsePostgreSql(database);
            }
            else if (engine == "mysql")
            {
                k.UseMySql(MySqlEngine.ConnectionStringOf(database));
            }
            else
            {
                k.UseSqlite(database);
            }

            k.AddJob<NoopJob>().AddJob<LatencyJob>().AddJob<BatchDoneJob>().AddJob<CancelProbeJob>().AddJob<ProgressJob>();
            Child.AddRecoveryJobs(k);
            k.Configure(o =>
            {
                o.ProcessJobs = processJobs;
                for (var i = 0; i < workers; i++)
                {
                    o.Workers.Add(new WorkerOptions { Threads = threads, ClaimAhead = claimAhead, DirectHandOff = directHandOff ?? true });
                }
            });
        });
        return builder.Build();
    }
}

public sealed class SqliteEngine : BenchEngine
{
    private readonly string _folder = Directory.CreateTempSubdirectory("keel-bench-").FullName;
    private int _count;

    public override string Name => "sqlite";

    public override Task<string> NewDatabaseAsync()
        => Task.FromResult(Path.Combine(_folder, $"run-{Interlocked.Increment(ref _count)}.db"));

    public override Task DropDatabaseAsync(string database)
    {
        SqliteConnection.ClearAllPools();
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            try
            {
                File.Delete(database + suffix);
            }
            catch (IOException)
            {
            }
        }

        return Task.CompletedTask;
    }

    public override async Task<IReadOnlyList<KeyValuePair<string, string>>> DescribeAsync()
    {
        await using var connection = new SqliteConnection("Data Source=:memory:");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT sqlite_version()";
        var version = (string)(await command.ExecuteScalarAsync())!;
        return
        [
            new("version", "SQLite " + version),
            new("journal_mode", "WAL (set by Keel)"),
            new("synchronous", "NORMAL (Keel's default)"),
            new("file", "fresh temp file per run in " + _folder),
        ];
    }

    public override async Task<long> ScalarAsync(string database, string sql, CancellationToken ct = default)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Pooling = false, DefaultTimeout = 30 }.ToString());
        await connection.OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    public override ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }
}

public sealed class PostgresEngine : BenchEngine
{
    private readonly PostgresServer? _server;
    private readonly string _admin;

    private PostgresEngine(PostgresServer? server, string admin)
    {
        _server = server;
        _admin = admin;
    }

    public override string Name => "postgres";

    public override PostgresServer? Server => _server;

    public override async Task<long> ScalarAsync(string database, string sql, CancellationToken ct = default)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database) { Pooling = false, Timeout = 5, CommandTimeout = 15, ApplicationName = "keel-bench" }.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    public static async Task<PostgresEngine> StartAsync(string? connection)
    {
        if (connection is not null)
        {
            return new PostgresEngine(null, connection);
        }

        var settings = new Dictionary<string, string>(PostgresServerOptions.DurableSettings, StringComparer.Ordinal);
        if (HasStatementStatsLibrary())
        {
            // Counts every statement Keel sends (per database); costs the server a little on each statement, the
            // same for every configuration measured.
            settings["shared_preload_libraries"] = "pg_stat_statements";
        }

        var server = await PostgresServer.StartAsync(new PostgresServerOptions { Settings = settings });
        var engine = new PostgresEngine(server, server.ConnectionString);
        await engine.EnableStatementStatsAsync();
        return engine;
    }

    /// <summary>True once <c>pg_stat_statements</c> answers on the server (loaded at its start and created in the admin database).</summary>
    public bool HasStatementStats { get; private set; }

    private static bool HasStatementStatsLibrary()
        => Directory.Exists("/usr/lib/postgresql")
            && Directory.EnumerateFiles("/usr/lib/postgresql", "pg_stat_statements.so", SearchOption.AllDirectories).Any();

    private async Task EnableStatementStatsAsync()
    {
        try
        {
            await ExecuteAsync("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            await ExecuteAsync("SELECT count(*) FROM pg_stat_statements");
            HasStatementStats = true;
        }
        catch (PostgresException)
        {
            HasStatementStats = false; // not in shared_preload_libraries (a --connection server): statements are not counted
        }
    }

    /// <summary>
    /// The counters of <paramref name="database"/>: its statements (pg_stat_statements), commits and row writes
    /// (pg_stat_database; a backend reports them when its transaction ends idle or when it exits, so close the pools
    /// first: <see cref="SettleAsync"/>), and the server's WAL position in bytes.
    /// </summary>
    public async Task<PostgresCounters> CountersAsync(string database)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = (HasStatementStats
                ? "SELECT (SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements p WHERE p.dbid = d.oid), "
                : "SELECT NULL::bigint, ")
            + "s.xact_commit, s.tup_inserted + s.tup_updated + s.tup_deleted, pg_current_wal_lsn() - '0/0'::pg_lsn "
            + "FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid WHERE d.datname = $1";
        command.Parameters.Add(new NpgsqlParameter { Value = new NpgsqlConnectionStringBuilder(database).Database });
        await using var reader = await command.ExecuteReaderAsync();
        if (!await reader.ReadAsync())
        {
            throw new InvalidOperationException("the bench's database is gone");
        }

        return new PostgresCounters(reader.IsDBNull(0) ? null : reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetDecimal(3));
    }

    /// <summary>
    /// <see cref="CountersAsync"/> once its row counts stop moving (read every 250 ms, up to 5 s): exiting backends
    /// report their last counters a little after they leave pg_stat_activity, later still on a busy machine.
    /// </summary>
    public async Task<PostgresCounters> SettledCountersAsync(string database)
    {
        var last = await CountersAsync(database);
        for (var i = 0; i < 20; i++)
        {
            await Task.Delay(250);
            var now = await CountersAsync(database);
            if (now.RowWrites == last.RowWrites && now.Commits == last.Commits)
            {
                return now;
            }

            last = now;
        }

        return last;
    }

    /// <summary>The statements run most often in <paramref name="database"/>: calls, rows and total ms each (empty without pg_stat_statements).</summary>
    public async Task<IReadOnlyList<(string Query, long Calls, long Rows, double TotalMs)>> TopStatementsAsync(string database, int count)
    {
        if (!HasStatementStats)
        {
            return [];
        }

        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT p.query, p.calls, p.rows, p.total_exec_time FROM pg_stat_statements p JOIN pg_database d ON d.oid = p.dbid "
            + "WHERE d.datname = $1 ORDER BY p.calls DESC LIMIT $2";
        command.Parameters.Add(new NpgsqlParameter { Value = new NpgsqlConnectionStringBuilder(database).Database });
        command.Parameters.Add(new NpgsqlParameter { Value = count });
        var result = new List<(string, long, long, double)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            result.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetDouble(3)));
        }

        return result;
    }

    /// <summary>Closes every pooled connection and waits until <paramref name="database"/> has no backend left, so that their statistics are reported.</summary>
    public async Task SettleAsync(string database)
    {
        NpgsqlConnection.ClearAllPools();
        var name = new NpgsqlConnectionStringBuilder(database).Database!.Replace("'", "''", StringComparison.Ordinal);
        for (var i = 0; i < 100; i++)
        {
            if (await ScalarAsync(_admin, $"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'") == 0)
            {
                // A backend leaves pg_stat_activity a moment before it reports its last counters on exit.
                await Task.Delay(300);
                return;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>
    /// <paramref name="database"/> reached through a <see cref="FaultProxy"/> that adds <paramref name="roundTripMs"/>
    /// to every round trip (half each way), run in a child process of its own (<see cref="Child.Proxy"/>) so that its
    /// pumps do not queue behind the workers' jobs on this process's thread pool (which stretched every round trip when
    /// the workers were busy); the caller disposes the proxy.
    /// </summary>
    public static async Task<(string Database, IAsyncDisposable Proxy)> ThroughDelayAsync(string database, double roundTripMs)
    {
        var builder = new NpgsqlConnectionStringBuilder(database);
        var proxy = await ProxyChild.StartAsync(builder.Host ?? "127.0.0.1", builder.Port, roundTripMs / 2);
        builder.Host = "127.0.0.1";
        builder.Port = proxy.Port;
        return (builder.ConnectionString, proxy);
    }

    public override async Task<string> NewDatabaseAsync()
    {
        var name = "keel_bench_" + Guid.NewGuid().ToString("N")[..12];
        await ExecuteAsync($"CREATE DATABASE \"{name}\"");
        return new NpgsqlConnectionStringBuilder(_admin) { Database = name }.ConnectionString;
    }

    public override async Task DropDatabaseAsync(string database)
    {
        NpgsqlConnection.ClearAllPools();
        var name = new NpgsqlConnectionStringBuilder(database).Database!;
        await ExecuteAsync($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    }

    public override async Task<IReadOnlyList<KeyValuePair<string, string>>> DescribeAsync()
    {
        var result = new List<KeyValuePair<string, string>>();
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        foreach (var setting in new[] { "server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level", "max_connections" })
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SHOW " + setting;
            result.Add(new(setting, Convert.ToString(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) ?? "?"));
        }

        result.Add(new("server", _server is null ? "given by --connection" : "throwaway server started by the bench (durable settings)"));
        return result;
    }

    public override async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>
/// MariaDB (or MySQL): a throwaway durable MariaDB server the bench starts (<see cref="MariaDbServer"/>), or the server
/// of <c>--connection</c> (a <c>mysql://user:password@host:port/</c> URI or a MySqlConnector connection string, as a
/// user allowed to create databases). Each database is handed out as a <c>mysql://</c> URI, the form
/// <c>Keel:Database</c> takes, so the child processes reach it through the same setting.
/// </summary>
public sealed class MySqlEngine : BenchEngine
{
    private readonly MariaDbServer? _server;
    private readonly string _admin;

    private MySqlEngine(MariaDbServer? server, string admin)
    {
        _server = server;
        _admin = admin;
    }

    public override string Name => "mysql";

    public static async Task<MySqlEngine> StartAsync(string? connection)
    {
        if (connection is not null)
        {
            var isUri = connection.StartsWith("mysql:", StringComparison.OrdinalIgnoreCase) || connection.StartsWith("mariadb:", StringComparison.OrdinalIgnoreCase);
            return new MySqlEngine(null, isUri ? ConnectionStringOf(connection) : new MySqlConnectionStringBuilder(connection).ConnectionString);
        }

        var server = await MariaDbServer.StartAsync();
        return new MySqlEngine(server, server.ConnectionString);
    }

    /// <summary>The MySqlConnector connection string of a <c>mysql://</c> URI (as Keel.MySql's provider reads it).</summary>
    public static string ConnectionStringOf(string uri)
    {
        var parts = KeelDatabaseSetting.Parse(uri, []).ParseUri();
        var builder = new MySqlConnectionStringBuilder { Server = parts.Host, Database = parts.Database, UserID = parts.Username, Password = parts.Password };
        if (parts.Port is { } port)
        {
            builder.Port = checked((uint)port);
        }

        foreach (var (key, value) in parts.Parameters)
        {
            builder[key] = value;
        }

        return builder.ConnectionString;
    }

    public override async Task<string> NewDatabaseAsync()
    {
        var name = "keel_bench_" + Guid.NewGuid().ToString("N")[..12];
        await ExecuteAsync($"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
        var admin = new MySqlConnectionStringBuilder(_admin);
        return string.Create(CultureInfo.InvariantCulture, $"mysql://{Uri.EscapeDataString(admin.UserID)}:{Uri.EscapeDataString(admin.Password)}@{admin.Server}:{admin.Port}/{name}");
    }

    public override async Task DropDatabaseAsync(string database)
    {
        MySqlConnection.ClearAllPools();
        var name = new MySqlConnectionStringBuilder(ConnectionStringOf(database)).Database;
        await ExecuteAsync($"DROP DATABASE IF EXISTS `{name}`");
    }

    public override async Task<long> ScalarAsync(string database, string sql, CancellationToken ct = default)
    {
        await using var connection = new MySqlConnection(new MySqlConnectionStringBuilder(ConnectionStringOf(database)) { Pooling = false, ConnectionTimeout = 5, DefaultCommandTimeout = 15 }.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    public override async Task<IReadOnlyList<KeyValuePair<string, string>>> DescribeAsync()
    {
        string[] names = ["version", "innodb_flush_log_at_trx_commit", "sync_binlog", "log_bin", "innodb_doublewrite", "innodb_flush_method", "innodb_buffer_pool_size", "tx_isolation", "max_connections"];
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var connection = new MySqlConnection(new MySqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + string.Join(", ", names.Select(n => $"'{n}'")) + ")";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                values[reader.GetString(0)] = reader.GetString(1);
            }
        }

        var result = names.Where(values.ContainsKey).Select(n => new KeyValuePair<string, string>(n, n == "innodb_buffer_pool_size" && long.TryParse(values[n], CultureInfo.InvariantCulture, out var bytes) ? $"{bytes / (1024 * 1024)}MB" : values[n])).ToList();
        result.Add(new("server", _server is null ? "given by --connection" : "throwaway MariaDB started by the bench (durable settings)"));
        return result;
    }

    public override async ValueTask DisposeAsync()
    {
        MySqlConnection.ClearAllPools();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new MySqlConnection(new MySqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}

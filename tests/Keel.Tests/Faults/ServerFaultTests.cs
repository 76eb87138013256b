using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Npgsql;

namespace Keel.Tests.Faults;

/// <summary>
/// The database-side fault machinery on its own (no Keel): a crash-restart, a standby promoted after its primary
/// was killed, and PgBouncer in transaction mode. When these fail, a fault test's failure says nothing about Keel.
/// </summary>
[Collection(Processes.RealProcesses.Name)]
public sealed class ServerFaultTests
{
    [Fact]
    public async Task A_crash_restart_ends_every_session_keeps_the_postmaster_and_its_start_time_and_keeps_committed_data()
    {
        await using var server = await PostgresServer.StartAsync(new PostgresServerOptions { Settings = new Dictionary<string, string>(PostgresServerOptions.CrashSafeTestSettings) });
        var database = await server.CreateDatabaseAsync();
        await ExecuteAsync(database, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)");
        var pid = server.PostmasterPid;
        var startedAt = await ScalarAsync<DateTime>(database, "SELECT pg_postmaster_start_time()");
        await using var session = await OpenAsync(database);

        await server.CrashRestartAsync();

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var command = new NpgsqlCommand("SELECT 1", session);
            await command.ExecuteScalarAsync();
        });
        Assert.Contains("terminated by signal 9", server.LogTail(100), StringComparison.Ordinal);
        Assert.Equal(pid, server.PostmasterPid);
        Assert.True(PidAlive(pid));
        Assert.Equal(startedAt, await ScalarAsync<DateTime>(database, "SELECT pg_postmaster_start_time()"));
        Assert.Equal(42, await ScalarAsync<int>(database, "SELECT v FROM t"));

        await server.StopAsync(); // the existing controls still work after a crash-restart
        await server.StartAgainAsync();
        Assert.Equal(42, await ScalarAsync<int>(database, "SELECT v FROM t"));
    }

    [Fact]
    public async Task A_synchronous_standby_promoted_after_its_primary_is_killed_has_every_acknowledged_commit_and_takes_writes()
    {
        await using var primary = await PostgresServer.StartAsync(new PostgresServerOptions { Replication = true });
        var database = await primary.CreateDatabaseAsync();
        await ExecuteAsync(database, "CREATE TABLE t (v int)");
        await using var standby = await primary.StartStandbyAsync(synchronous: true);
        Assert.True(standby.IsStandby);
        Assert.NotEqual(primary.Port, standby.Port);
        for (var i = 0; i < 100; i++)
        {
            await ExecuteAsync(database, $"INSERT INTO t VALUES ({i})");
        }

        var onStandby = new NpgsqlConnectionStringBuilder(database) { Port = standby.Port }.ConnectionString;
        Assert.True(await ScalarAsync<bool>(onStandby, "SELECT pg_is_in_recovery()"));

        await primary.KillAsync();
        await standby.PromoteAsync();

        Assert.False(standby.IsStandby);
        Assert.Equal(100, await ScalarAsync<long>(onStandby, "SELECT count(*) FROM t"));
        await ExecuteAsync(onStandby, "INSERT INTO t VALUES (100)");
        Assert.Equal(101, await ScalarAsync<long>(onStandby, "SELECT count(*) FROM t"));
    }

    [Fact]
    public async Task A_standby_needs_a_replicable_primary_and_only_a_standby_can_be_promoted()
    {
        await using var server = await PostgresServer.StartAsync(new PostgresServerOptions { Settings = new Dictionary<string, string>(PostgresServerOptions.TestSettings) { ["wal_level"] = "minimal", ["max_wal_senders"] = "0" } });
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => server.StartStandbyAsync());
        Assert.Contains("PostgresServerOptions.Replication", refused.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidOperationException>(() => server.PromoteAsync());
    }

    [Fact]
    public async Task PgBouncer_in_transaction_mode_forwards_to_the_server_and_hands_one_server_session_to_several_clients()
    {
        var server = await SharedPostgres.GetAsync();
        var database = await server.CreateDatabaseAsync();
        await using var bouncer = await PgBouncerServer.StartAsync(server, new PgBouncerOptions { DefaultPoolSize = 1, ServerLifetime = TimeSpan.FromSeconds(1) });
        var through = new NpgsqlConnectionStringBuilder(bouncer.ConnectionStringFor(database)) { Pooling = false, MaxAutoPrepare = 0 }.ConnectionString;
        Assert.True(bouncer.Pid > 0 && PidAlive(bouncer.Pid), $"pgbouncer pid {bouncer.Pid} runs");

        await using var first = await OpenAsync(through);
        await using var second = await OpenAsync(through);
        var backends = new HashSet<int>();
        for (var i = 0; i < 5; i++)
        {
            backends.Add(await ScalarAsync<int>(first, "SELECT pg_backend_pid()"));
            backends.Add(await ScalarAsync<int>(second, "SELECT pg_backend_pid()"));
        }

        Assert.Single(backends); // pool size 1: both clients' transactions ran on one server session
        Assert.Equal(new NpgsqlConnectionStringBuilder(database).Database, await ScalarAsync<string>(first, "SELECT current_database()"));

        var pid = bouncer.Pid;
        await bouncer.KillAsync();
        Assert.False(PidAlive(pid));
    }

    private static bool PidAlive(int pid) => Processes.SupervisedApp.IsAlive(pid);

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = await OpenAsync(connectionString);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = await OpenAsync(connectionString);
        return await ScalarAsync<T>(connection, sql);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}

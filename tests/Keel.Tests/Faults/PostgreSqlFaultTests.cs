using System.Globalization;
using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Npgsql;
using Xunit.Abstractions;

namespace Keel.Tests.Faults;

/// <summary>
/// Black-box fault tests on PostgreSQL (DESIGN §2, invariants 4-9): the test app runs in process mode as two hosts,
/// a <c>target</c> whose database connections the fault hits and an <c>observer</c> on a path the fault does not
/// touch (another host: its maintenance is the one that could wrongly prune the target's processes). After each
/// fault the run drains, and the database and the run logs must show no overlapping runs, no live process pruned,
/// no worker loss charged, and nothing left claimed.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class PostgreSqlFaultTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Without_a_fault_but_through_a_slow_proxy_the_checks_find_nothing()
    {
        // The control: the same apps, work and checks with no fault, so a fault test's failure is the fault's doing.
        await using var db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        var server = await SharedPostgres.GetAsync();
        await using var proxy = FaultProxy.Start(server.Port);
        proxy.Latency = TimeSpan.FromMilliseconds(3);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, Via(db.ConnectionString, proxy)), ("observer", 1, 2, db.ConnectionString));
        var limited = await StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        await FinishAsync(scene, before, limited);
        Assert.True(proxy.TotalAccepted > 0);
    }

    [Fact]
    public async Task Dropped_connections_pg_terminate_backend_prune_no_live_process_and_run_no_job_twice()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, Named(db.ConnectionString, "keel-target")), ("observer", 1, 2, Named(db.ConnectionString, "keel-observer")));
        var limited = await StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        foreach (var who in new[] { "keel-target", "keel-%", "keel-target" })
        {
            var ended = await db.ScalarAsync($"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '{who}'");
            scene.Note($"pg_terminate_backend of {ended} sessions of {(who == "keel-%" ? "both apps" : "the target")}");
            await Task.Delay(1000);
        }

        await FinishAsync(scene, before, limited);
    }

    [Fact]
    public async Task Connections_reset_by_a_proxy_prune_no_live_process_and_run_no_job_twice()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        var server = await SharedPostgres.GetAsync();
        await NetworkFaultCases.ResetsAsync(output, db, server.Port, proxy => Via(db.ConnectionString, proxy), db.ConnectionString);
    }

    [Fact]
    public async Task A_PostgreSQL_crash_restart_prunes_no_live_process_and_runs_no_job_twice()
    {
        await using var server = await PostgresServer.StartAsync(new PostgresServerOptions { Settings = new Dictionary<string, string>(PostgresServerOptions.CrashSafeTestSettings) });
        await using var db = await TestDatabase.CreateOnAsync(server);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, Named(db.ConnectionString, "keel-target")), ("observer", 1, 2, Named(db.ConnectionString, "keel-observer")));
        var limited = await StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        for (var round = 0; round < 2; round++)
        {
            scene.Note("crash-restart: SIGKILL of one backend");
            await server.CrashRestartAsync();
            scene.Note($"crash-restart: accepting connections again (postmaster pid {server.PostmasterPid} unchanged)");
            await Task.Delay(1500);
        }

        await FinishAsync(scene, before, limited);
    }

    [Fact]
    public async Task A_worker_black_holed_past_its_lease_cancels_its_job_before_another_host_takes_it_over()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        var server = await SharedPostgres.GetAsync();
        await NetworkFaultCases.BlackHoleAsync(output, db, server.Port, proxy => Via(db.ConnectionString, proxy), db.ConnectionString);
    }

    [Fact]
    public async Task A_failover_to_a_promoted_standby_prunes_no_live_process_and_runs_no_job_twice()
    {
        await using var primary = await PostgresServer.StartAsync(new PostgresServerOptions { Replication = true, Settings = new Dictionary<string, string>(PostgresServerOptions.CrashSafeTestSettings) });
        await using var direct = await TestDatabase.CreateOnAsync(primary);
        await using var standby = await primary.StartStandbyAsync(synchronous: true);
        await using var proxy = FaultProxy.Start(primary.Port); // the address clients know, moved to the standby at failover
        await using var db = TestDatabase.ForPostgreSql(Via(direct.ConnectionString, proxy));
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, Named(db.ConnectionString, "keel-target")), ("observer", 1, 2, Named(db.ConnectionString, "keel-observer")));
        var limited = await StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        await primary.KillAsync();
        scene.Note("failover: primary SIGKILLed");
        await standby.PromoteAsync();
        proxy.Retarget(standby.Port);
        scene.Note($"failover: standby promoted, the address moved to it ({proxy.ResetAll()} stale connections reset)");

        await FinishAsync(scene, before, limited);
    }

    /// <summary>The same database with an application name, so a test can pick out one app's sessions.</summary>
    internal static string Named(string connectionString, string application)
        => new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = application }.ConnectionString;

    /// <summary>The same database through <paramref name="proxy"/>.</summary>
    internal static string Via(string connectionString, FaultProxy proxy)
        => new NpgsqlConnectionStringBuilder(connectionString) { Host = proxy.Host, Port = proxy.Port }.ConnectionString;

    /// <summary>
    /// Enough work to keep every worker busy through the faults (about 3 s): short jobs, and a chain of jobs under
    /// one concurrency limit. Returns once the target runs some of them.
    /// </summary>
    internal static async Task<IReadOnlyList<long>> StartWorkAsync(FaultScene scene)
    {
        var limited = await scene.InsertLimitedAsync(12, 150);
        await scene.InsertAsync(60, 300);
        var target = scene.App("target");
        await FaultScene.WaitForAsync(() => Task.FromResult(target.RunLog().Count(l => l.What == "start") >= 4), TimeSpan.FromSeconds(30), "the target runs jobs");
        scene.Note(string.Create(CultureInfo.InvariantCulture, $"work under way: {limited.Count} limited jobs of 150 ms and 60 jobs of 300 ms"));
        return limited;
    }

    internal static async Task FinishAsync(FaultScene scene, IReadOnlyList<ProcessSnapshot> before, IReadOnlyList<long> limited)
    {
        await scene.DrainAsync(Drain);
        await scene.CheckAsync(before, limited);
        await scene.StopAppsAsync();
        scene.AssertNoViolations();
    }
}

using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Npgsql;
using Xunit.Abstractions;

namespace Keel.Tests.Faults;

/// <summary>
/// Keel behind PgBouncer in transaction mode (a server session is lent to a client for one transaction at a
/// time, and closed once older than <c>server_lifetime</c>), with a worker killed with SIGKILL in the middle of a
/// run: only that worker's jobs may be recovered and charged, nothing else is pruned, and no job runs twice at once.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class PgBouncerFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Behind_PgBouncer_in_transaction_mode_a_killed_worker_is_recovered_and_nothing_else_is_pruned()
    {
        var server = await SharedPostgres.GetAsync();
        await using var db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        await using var bouncer = await PgBouncerServer.StartAsync(server, new PgBouncerOptions { DefaultPoolSize = 10, ServerLifetime = TimeSpan.FromSeconds(1), ServerIdleTimeout = TimeSpan.FromSeconds(1) });
        // What docs/operations.md asks of a connection string behind a transaction-mode PgBouncer older than 1.21.
        var pooled = new NpgsqlConnectionStringBuilder(bouncer.ConnectionStringFor(db.ConnectionString)) { MaxAutoPrepare = 0 }.ConnectionString;
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, pooled), ("observer", 1, 2, pooled));
        var limited = await PostgreSqlFaultTests.StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        var target = scene.App("target");
        var victim = 0;
        await FaultScene.WaitForAsync(
            () =>
            {
                victim = target.RunLogPids().FirstOrDefault(pid => SupervisedApp.IsAlive(pid) && Running(scene, pid).Count > 0);
                return Task.FromResult(victim != 0);
            },
            TimeSpan.FromSeconds(30),
            "a worker of the target runs a job");
        scene.Kill(victim);
        scene.Note($"the killed worker was running jobs {string.Join(", ", Running(scene, victim))}");
        await Task.Delay(2000); // several server_lifetime cycles while the survivors work on

        await scene.DrainAsync(TimeSpan.FromSeconds(20));
        await scene.CheckAsync(before, limited);
        await scene.StopAppsAsync();
        scene.AssertNoViolations();
    }

    /// <summary>The jobs <paramref name="pid"/> has started and not ended, per the run log.</summary>
    private static HashSet<long> Running(FaultScene scene, int pid)
    {
        var log = scene.Apps.SelectMany(a => a.App.RunLog()).Where(l => l.Pid == pid).ToList();
        return [.. log.Where(l => l.What == "start" && !log.Any(e => e.What is "end" or "cancel" && e.JobId == l.JobId && e.Attempt == l.Attempt)).Select(l => l.JobId)];
    }
}

/// <summary>What Keel decides when a pooler answers for PostgreSQL, and what it decides when PostgreSQL answers itself.</summary>
[Collection(RealProcesses.Name)]
public sealed class PoolerDetectionTests
{
    [Fact]
    public async Task Behind_a_pooler_processes_use_their_lease_alone_and_a_warning_says_so()
    {
        var server = await SharedPostgres.GetAsync();
        await using var db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        await using var bouncer = await PgBouncerServer.StartAsync(server);
        await using var pooled = new Keel.PostgreSql.PostgreSqlStorage(new Keel.PostgreSql.PostgreSqlStorageOptions { ConnectionString = bouncer.ConnectionStringFor(db.ConnectionString) });

        var warning = Assert.Single(await pooled.StartupWarningsAsync(default));
        Assert.Contains("connection pooler", warning, StringComparison.Ordinal);
        var id = await pooled.ProcessRegisterAsync(new Keel.Storage.ProcessRegisterParams("worker-pooled", "Worker", 1, "h", DateTimeOffset.UtcNow, null, "{}", null), default);
        Assert.Equal("lease", (await pooled.ProcessesListAsync(new Keel.Storage.ProcessesListParams(null, null), default)).Single(p => p.Id == id).Liveness);
        Assert.Empty(await pooled.ProcessesSessionEndedAsync(new Keel.Storage.ProcessesSessionParams([id], TimeSpan.Zero), default)); // Never probed.

        // Directly, the same database: session liveness, no warning.
        Assert.Empty(await db.Storage.StartupWarningsAsync(default));
        var direct = await db.Storage.ProcessRegisterAsync(new Keel.Storage.ProcessRegisterParams("worker-direct", "Worker", 1, "h", DateTimeOffset.UtcNow, null, "{}", null), default);
        Assert.Equal("session", (await db.Storage.ProcessesListAsync(new Keel.Storage.ProcessesListParams(null, null), default)).Single(p => p.Id == direct).Liveness);
    }
}

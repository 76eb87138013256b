using System.Globalization;
using Keel.PostgreSql;
using Keel.Storage;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

/// <summary>
/// PostgreSQL session liveness: each process registered through a store holds a session-level advisory lock on a
/// dedicated connection; another store (the observer) reports the process once that lock can be taken.
/// </summary>
public sealed class PostgreSqlSessionLivenessTests : PostgreSqlStoreTest
{
    private static readonly string LockFilter = string.Create(
        CultureInfo.InvariantCulture,
        $"locktype = 'advisory' AND classid = {ProcessesSql.SessionLockNamespace} AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");

    /// <summary>The store that registers the processes; <see cref="Observer"/> is another, as another host's.</summary>
    private IKeelStorage Own => Db.Storage;

    private PostgreSqlStorage Observer => Storage;

    [Fact]
    public async Task A_live_process_is_not_reported_by_another_store_nor_by_its_own()
    {
        var id = await RegisterAsync();

        Assert.Empty(await EndedAsync(Observer, id));
        Assert.Empty(await EndedAsync(Own, id));
        Assert.Equal(1, await LocksAsync(id));
        Assert.True((await Own.ProcessHeartbeatAsync(new ProcessHeartbeatParams(id, null), default)).Alive);
        Assert.Empty(await EndedAsync(Observer, id));
    }

    [Fact]
    public async Task A_terminated_backend_is_taken_again_at_once_so_a_live_process_is_never_pruned()
    {
        var alive = await RegisterAsync();
        var claimed = await ClaimOneAsync(alive);
        var before = await LockHolderAsync(alive);

        // A dropped connection (a proxy restart, a network blip, an administrator) ends the session and its lock.
        await Db.ScalarAsync($"SELECT count(pg_terminate_backend({before.ToString(CultureInfo.InvariantCulture)}))");
        await Eventually.WaitUntilAsync(async () => await LockHolderAsync(alive) is var now && now != 0 && now != before, TimeSpan.FromSeconds(5), "the live process took its lock again on a new session");

        // Probes see it alive again; maintenance, probing through the grace window, never prunes it.
        var uptime = await Db.ScalarAsync("SELECT (extract(epoch from now() - pg_postmaster_start_time()) * 1000)::bigint");
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, 1100 - uptime)));
        var maintenance = NewMaintenance(TimeSpan.FromMilliseconds(300));
        for (var pass = 0; pass < 8; pass++)
        {
            Assert.Empty(await maintenance.RunOnceAsync(default, leases: false));
            await Task.Delay(100);
        }

        Assert.Equal(1, await Db.ScalarAsync($"SELECT count(*) FROM keel_claimed_executions WHERE id = {claimed.ToString(CultureInfo.InvariantCulture)}"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs"));
    }

    [Fact]
    public async Task A_process_whose_session_is_gone_is_reported_and_the_check_leaves_no_lock_behind()
    {
        var alive = await RegisterAsync();
        var dead = await RegisterDeadAsync();

        Assert.Equal([dead], await EndedAsync(Observer, alive, dead));
        Assert.Equal([dead], await EndedAsync(Observer, alive, dead));
        Assert.Equal(0, await LocksAsync(dead));
        Assert.Equal(1, await LocksAsync(alive));
    }

    [Fact]
    public async Task Deregistering_releases_the_lock_and_a_process_without_a_row_is_not_reported()
    {
        var id = await RegisterAsync();

        await Own.ProcessDeregisterAsync(new ProcessDeregisterParams(id, null), default);

        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal(0, await LocksAsync(id));
        Assert.Empty(await EndedAsync(Observer, id));
    }

    [Fact]
    public async Task Disposing_the_store_ends_its_processes_sessions()
    {
        var storage = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = Db.ConnectionString });
        var id = await storage.ProcessRegisterAsync(Registration(), default);
        Assert.Empty(await EndedAsync(Observer, id));

        await storage.DisposeAsync();

        Assert.Equal([id], await EndedAsync(Observer, id));
    }

    [Fact]
    public async Task Nothing_is_reported_while_the_server_has_been_up_for_less_than_the_minimum()
    {
        var id = await RegisterDeadAsync();

        Assert.Empty(await Observer.ProcessesSessionEndedAsync(new ProcessesSessionParams([id], TimeSpan.FromDays(3650)), default));
        Assert.Equal([id], await EndedAsync(Observer, id));
    }

    [Fact]
    public async Task A_heartbeat_for_a_deleted_row_returns_false_and_closes_the_dedicated_connection()
    {
        var id = await RegisterAsync();
        Assert.Equal(1, await Db.ExecuteAsync("DELETE FROM keel_processes WHERE id = " + id.ToString(CultureInfo.InvariantCulture)));

        Assert.False((await Own.ProcessHeartbeatAsync(new ProcessHeartbeatParams(id, null), default)).Alive);
        Assert.Equal(0, await LocksAsync(id));
    }

    private static ProcessRegisterParams Registration()
        => new("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 4242, "test-host", DateTimeOffset.UtcNow, null, "{}", null);

    [Fact]
    public async Task Maintenance_prunes_a_process_whose_session_stayed_gone_for_the_grace_without_waiting_for_its_lease()
    {
        // Right after a server start, session checks are off (everyone is reconnecting): wait out the guard.
        var uptime = await Db.ScalarAsync("SELECT (extract(epoch from now() - pg_postmaster_start_time()) * 1000)::bigint");
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, 1100 - uptime)));
        var dead = await RegisterDeadAsync(claim: true);

        var maintenance = NewMaintenance(TimeSpan.FromMilliseconds(400));
        Assert.Empty(await maintenance.RunOnceAsync(default, leases: false)); // One probe is never proof of death.
        await Task.Delay(450);
        var pruned = Assert.Single(await maintenance.RunOnceAsync(default, leases: false));

        Assert.Equal((dead, "session-ended", 1), (pruned.Process.Id, pruned.Cause.Code, pruned.Recovery.Retried));
        Assert.False(pruned.Process.LeaseExpired, "pruned on its session, not its lease");
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task Running_maintenance_checks_sessions_every_liveness_interval_not_every_prune_interval()
    {
        var uptime = await Db.ScalarAsync("SELECT (extract(epoch from now() - pg_postmaster_start_time()) * 1000)::bigint");
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, 1100 - uptime)));
        // The threshold doubles as the server-uptime guard of session checks: short, so the fresh test server passes it.
        var options = new KeelOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100), AliveThreshold = TimeSpan.FromSeconds(1), PruneInterval = TimeSpan.FromHours(1), LivenessCheckInterval = TimeSpan.FromMilliseconds(100), SessionGracePeriod = TimeSpan.FromMilliseconds(300) };
        var maintenance = new Keel.Runtime.Maintenance(Observer, options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new Keel.Runtime.KeelClock(TimeProvider.System), () => new HashSet<long>());
        using var stop = new CancellationTokenSource();
        var running = maintenance.RunAsync(stop.Token);
        try
        {
            await Task.Delay(300); // The first pass (leases included) is behind us; the next is an hour away.
            var dead = await RegisterDeadAsync(claim: true);

            await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions") == 1, TimeSpan.FromSeconds(10), "the claim of the process whose session ended is back in ready");
            Assert.Equal(0, await Db.ScalarAsync($"SELECT count(*) FROM keel_processes WHERE id = {dead.ToString(CultureInfo.InvariantCulture)}"));
        }
        finally
        {
            await stop.CancelAsync();
            await running;
        }
    }

    private Keel.Runtime.Maintenance NewMaintenance(TimeSpan grace)
        => new(Observer, new KeelOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(300), AliveThreshold = TimeSpan.FromSeconds(1), SessionGracePeriod = grace }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new Keel.Runtime.KeelClock(TimeProvider.System), () => new HashSet<long>());

    /// <summary>A process that died: registered through a store of its own, which then went away with its session.</summary>
    private async Task<long> RegisterDeadAsync(bool claim = false)
    {
        await using var doomed = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = Db.ConnectionString });
        var id = await doomed.ProcessRegisterAsync(Registration(), default);
        if (claim)
        {
            await ClaimOneAsync(id);
        }

        return id;
    }

    private async Task<long> ClaimOneAsync(long processId)
    {
        await Own.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "default", "{}", 0, 5, null)], null), default);
        return Assert.Single(await Own.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, 1, null), default)).ClaimId;
    }

    private async Task<long> LockHolderAsync(long id)
        => await Db.ScalarAsync($"SELECT coalesce(max(pid), 0) FROM pg_locks WHERE {LockFilter} AND granted AND objid = {PostgreSqlStorage.SessionLockKey(id).ToString(CultureInfo.InvariantCulture)}");

    private static async Task<IReadOnlyList<long>> EndedAsync(IKeelStorage storage, params long[] ids)
        => await storage.ProcessesSessionEndedAsync(new ProcessesSessionParams(ids, TimeSpan.Zero), default);

    private async Task<long> RegisterAsync() => await Own.ProcessRegisterAsync(Registration(), default);

    private async Task<long> LocksAsync(long id)
        => await Db.ScalarAsync($"SELECT count(*) FROM pg_locks WHERE {LockFilter} AND objid = {PostgreSqlStorage.SessionLockKey(id).ToString(CultureInfo.InvariantCulture)}");
}

/// <summary>SQLite has no sessions: it reports none (same-host processes are checked by pid instead).</summary>
public sealed class SqliteSessionLivenessTests
{
    [Fact]
    public async Task No_process_is_ever_reported_as_session_ended()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        var id = await db.Storage.ProcessRegisterAsync(new ProcessRegisterParams("worker-1", "Worker", 4242, "test-host", DateTimeOffset.UtcNow, null, "{}", null), default);

        Assert.Empty(await db.Storage.ProcessesSessionEndedAsync(new ProcessesSessionParams([id, id + 1], TimeSpan.Zero), default));
    }
}

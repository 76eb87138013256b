using System.Globalization;
using Keel.PostgreSql;
using Keel.Storage;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

/// <summary>
/// PostgreSQL session liveness: each process registered through a store holds a session-level advisory lock on a
/// dedicated connection; another store (the observer) reports the process once that lock can be taken.
/// </summary>
public sealed class PostgreSqlSessionLivenessTests : IAsyncLifetime
{
    private static readonly string LockFilter = string.Create(
        CultureInfo.InvariantCulture,
        $"locktype = 'advisory' AND classid = {PostgreSqlStatements.SessionLockNamespace} AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");

    private TestDatabase _db = null!;
    private PostgreSqlStorage _observer = null!;

    private IKeelStorage Storage => _db.Storage;

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        _observer = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = _db.ConnectionString });
    }

    public async Task DisposeAsync()
    {
        await _observer.DisposeAsync();
        await _db.DisposeAsync();
    }

    [Fact]
    public async Task A_live_process_is_not_reported_by_another_store_nor_by_its_own()
    {
        var id = await RegisterAsync();

        Assert.Empty(await EndedAsync(_observer, id));
        Assert.Empty(await EndedAsync(Storage, id));
        Assert.Equal(1, await LocksAsync(id));
        Assert.True(await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(id, null), default));
        Assert.Empty(await EndedAsync(_observer, id));
    }

    [Fact]
    public async Task A_terminated_backend_is_reported_and_the_check_leaves_no_lock_behind()
    {
        var alive = await RegisterAsync();
        var dead = await RegisterAsync();

        await TerminateAsync(dead);

        Assert.Equal([dead], await EndedAsync(_observer, alive, dead));
        Assert.Equal([dead], await EndedAsync(_observer, alive, dead));
        Assert.Equal(0, await LocksAsync(dead));

        // The process itself was not dead: its next heartbeat reconnects and takes its lock again.
        Assert.True(await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(dead, null), default));
        Assert.Empty(await EndedAsync(_observer, alive, dead));
        Assert.Equal(1, await LocksAsync(dead));
    }

    [Fact]
    public async Task Deregistering_releases_the_lock_and_a_process_without_a_row_is_not_reported()
    {
        var id = await RegisterAsync();

        await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(id, null), default);

        Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal(0, await LocksAsync(id));
        Assert.Empty(await EndedAsync(_observer, id));
    }

    [Fact]
    public async Task Disposing_the_store_ends_its_processes_sessions()
    {
        var storage = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = _db.ConnectionString });
        var id = await storage.ProcessRegisterAsync(Registration(), default);
        Assert.Empty(await EndedAsync(_observer, id));

        await storage.DisposeAsync();

        Assert.Equal([id], await EndedAsync(_observer, id));
    }

    [Fact]
    public async Task Nothing_is_reported_while_the_server_has_been_up_for_less_than_the_minimum()
    {
        var id = await RegisterAsync();
        await TerminateAsync(id);

        Assert.Empty(await _observer.ProcessesSessionEndedAsync(new ProcessesSessionParams([id], TimeSpan.FromDays(3650)), default));
        Assert.Equal([id], await EndedAsync(_observer, id));
    }

    [Fact]
    public async Task A_heartbeat_for_a_deleted_row_returns_false_and_closes_the_dedicated_connection()
    {
        var id = await RegisterAsync();
        Assert.Equal(1, await _db.ExecuteAsync("DELETE FROM keel_processes WHERE id = " + id.ToString(CultureInfo.InvariantCulture)));

        Assert.False(await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(id, null), default));
        Assert.Equal(0, await LocksAsync(id));
    }

    private static ProcessRegisterParams Registration()
        => new("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 4242, "test-host", DateTimeOffset.UtcNow, null, "{}", null);

    [Fact]
    public async Task Maintenance_prunes_a_process_whose_session_ended_without_waiting_for_its_heartbeat()
    {
        // Right after a server start, session checks are off (everyone is reconnecting): wait out the guard.
        var uptime = await _db.ScalarAsync("SELECT (extract(epoch from now() - pg_postmaster_start_time()) * 1000)::bigint");
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, 1100 - uptime)));
        var dead = await RegisterAsync();
        await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "default", "{}", 0, 5, null)], null), default);
        await Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, 1, null), default);
        await TerminateAsync(dead);

        var options = new KeelOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100), AliveThreshold = TimeSpan.FromSeconds(1) };
        var maintenance = new Keel.Runtime.Maintenance(_observer, options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new Keel.Runtime.KeelClock(TimeProvider.System), () => new HashSet<long>());
        var pruned = Assert.Single(await maintenance.RunOnceAsync(default));

        Assert.Equal((dead, "session-ended", 1), (pruned.Process.Id, pruned.Cause.Code, pruned.Recovery.Retried));
        Assert.True(pruned.Process.HeartbeatAge < options.AliveThreshold, "pruned on its session, not its heartbeat");
        Assert.Equal(1, await _db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task Running_maintenance_checks_sessions_every_liveness_interval_not_every_prune_interval()
    {
        var uptime = await _db.ScalarAsync("SELECT (extract(epoch from now() - pg_postmaster_start_time()) * 1000)::bigint");
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, 1100 - uptime)));
        // The threshold doubles as the server-uptime guard of session checks: short, so the fresh test server passes it.
        var options = new KeelOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100), AliveThreshold = TimeSpan.FromSeconds(1), PruneInterval = TimeSpan.FromHours(1), LivenessCheckInterval = TimeSpan.FromMilliseconds(100) };
        var maintenance = new Keel.Runtime.Maintenance(_observer, options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new Keel.Runtime.KeelClock(TimeProvider.System), () => new HashSet<long>());
        using var stop = new CancellationTokenSource();
        var running = maintenance.RunAsync(stop.Token);
        try
        {
            await Task.Delay(300); // The first pass (heartbeats included) is behind us; the next is an hour away.
            var dead = await RegisterAsync();
            await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "default", "{}", 0, 5, null)], null), default);
            await Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, 1, null), default);
            await TerminateAsync(dead);

            await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_ready_executions") == 1, TimeSpan.FromSeconds(10), "the claim of the process whose session ended is back in ready");
            Assert.Equal(0, await _db.ScalarAsync($"SELECT count(*) FROM keel_processes WHERE id = {dead.ToString(CultureInfo.InvariantCulture)}"));
        }
        finally
        {
            await stop.CancelAsync();
            await running;
        }
    }

    private static async Task<IReadOnlyList<long>> EndedAsync(IKeelStorage storage, params long[] ids)
        => await storage.ProcessesSessionEndedAsync(new ProcessesSessionParams(ids, TimeSpan.Zero), default);

    private async Task<long> RegisterAsync() => await Storage.ProcessRegisterAsync(Registration(), default);

    private async Task<long> LocksAsync(long id)
        => await _db.ScalarAsync($"SELECT count(*) FROM pg_locks WHERE {LockFilter} AND objid = {PostgreSqlStorage.SessionLockKey(id).ToString(CultureInfo.InvariantCulture)}");

    /// <summary>Kills the backend holding the process's lock, as a crash or a network cut would, and waits until it is gone.</summary>
    private async Task TerminateAsync(long id)
    {
        var key = PostgreSqlStorage.SessionLockKey(id).ToString(CultureInfo.InvariantCulture);
        Assert.Equal(1, await _db.ScalarAsync($"SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE {LockFilter} AND objid = {key}"));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await LocksAsync(id) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the terminated backend still holds its lock");
            await Task.Delay(20);
        }
    }
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

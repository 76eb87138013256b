using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Keel.Tests.Faults;

/// <summary>
/// SQLite has no connection to drop, reset or black-hole; its outage is a write lock held by someone else (a long
/// transaction, a backup, a stalled disk): every heartbeat waits. Held past the lease while a long job runs, the
/// worker must have stopped that job before any other worker can start it again.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class SqliteFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_write_lock_held_past_the_lease_stops_the_jobs_before_a_takeover_is_possible()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("first", 1, 2, null), ("second", 1, 2, null));
        await scene.InsertAsync(4, 4000);
        await FaultScene.WaitForAsync(() => Task.FromResult(scene.Apps.Sum(a => a.App.RunLog().Count(l => l.What == "start")) >= 4), TimeSpan.FromSeconds(30), "every worker runs jobs");
        var before = await scene.SnapshotAsync();

        var (taken, released) = await HoldWriteLockAsync(scene, db, TimeSpan.FromSeconds(3)); // 2.5 leases

        await scene.DrainAsync(TimeSpan.FromSeconds(20));
        scene.CheckStoppedBefore(taken, released, ["first", "second"], "the write lock was released after the lease had expired (any process may take over from then on)");
        await scene.CheckAsync(before, prunable: ["first", "second"]);
        await scene.StopAppsAsync();
        scene.AssertNoViolations();
    }

    /// <summary>Holds SQLite's write lock for <paramref name="hold"/>; returns when it was taken and released (Unix ms).</summary>
    private static async Task<(long Taken, long Released)> HoldWriteLockAsync(FaultScene scene, TestDatabase db, TimeSpan hold)
    {
        await using var locker = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db.ConnectionString, DefaultTimeout = 30 }.ToString());
        await locker.OpenAsync();
        await using (var begin = locker.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE";
            await begin.ExecuteNonQueryAsync();
        }

        var taken = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        scene.Note("write lock taken (BEGIN EXCLUSIVE): no heartbeat can be written");
        await Task.Delay(hold);
        var released = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using (var commit = locker.CreateCommand())
        {
            commit.CommandText = "COMMIT";
            await commit.ExecuteNonQueryAsync();
        }

        scene.Note("write lock released");
        return (taken, released);
    }
}

using Keel.Storage;
using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Keel.Tests.Processes;

/// <summary>
/// The bounded chaos test: thousands of jobs, three worker processes, and random SIGKILL and SIGSTOP/SIGCONT every
/// few hundred milliseconds. At the end every job is finished exactly once in the database, no claim is left, and
/// repeated executions stay within kills × (threads + claim-ahead): a worker holds at most that many claims, and only a
/// held claim's job can have run without its outcome written.
/// </summary>
[Collection(RealProcesses.Name)]
public abstract class ChaosTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Jobs = 5000;
    private const int Threads = 4;

    // WorkerOptions.ClaimAhead's default: twenty times the threads (the most; the worker sizes it to its round trips).
    private const int ClaimAhead = 20 * Threads;

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    [Fact]
    public async Task Every_job_finishes_exactly_once_under_random_kills_and_freezes()
    {
        await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, Jobs).Select(i => new NewJob("chaos", "default", $"{{\"milliseconds\":{5 + (i % 20)}}}", 0, 1000, null, 1000))], null), default);
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 3, threads: Threads));
        await app.WaitForWorkersAsync(3);

        var random = new Random(20261127);
        var kills = 0;
        var freezes = 0;
        var frozen = new List<(int Pid, DateTime Until)>();
        var chaosEnds = DateTime.UtcNow.AddSeconds(20);
        long mostHeld = 0;
        while (DateTime.UtcNow < chaosEnds && await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NULL") > 0)
        {
            await Task.Delay(random.Next(200, 500));
            mostHeld = Math.Max(mostHeld, await Db.ScalarAsync("SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM keel_claimed_executions GROUP BY process_id) AS held"));
            foreach (var thawed in frozen.Where(f => f.Until <= DateTime.UtcNow).ToList())
            {
                SupervisedApp.Signal(thawed.Pid, SupervisedApp.SIGCONT);
                frozen.Remove(thawed);
            }

            var workers = (await app.ProcessesAsync()).Where(p => p.Kind == "Worker" && frozen.TrueForAll(f => f.Pid != p.Pid) && SupervisedApp.IsAlive(p.Pid)).ToList();
            if (workers.Count == 0)
            {
                continue;
            }

            var victim = workers[random.Next(workers.Count)];
            if (random.Next(2) == 0)
            {
                SupervisedApp.Signal(victim.Pid, SupervisedApp.SIGKILL);
                kills++;
            }
            else
            {
                SupervisedApp.Signal(victim.Pid, SupervisedApp.SIGSTOP);
                frozen.Add((victim.Pid, DateTime.UtcNow.AddMilliseconds(random.Next(300, 2500))));
                freezes++;
            }
        }

        foreach (var (pid, _) in frozen)
        {
            SupervisedApp.Signal(pid, SupervisedApp.SIGCONT);
        }

        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == Jobs, TimeSpan.FromSeconds(90), $"all {Jobs} jobs finish");
        Assert.Equal(0, await app.StopAsync());

        var starts = app.RunLog().Where(l => l.What == "start").ToList();
        var repeated = starts.Count - starts.Select(s => s.JobId).Distinct().Count();
        var bound = (kills + freezes) * (Threads + ClaimAhead);
        output.WriteLine($"{Engine}: {Jobs} jobs, {kills} SIGKILLs, {freezes} SIGSTOP/SIGCONTs, {starts.Count} executions, {repeated} repeated (bound {bound}), at most {mostHeld} claims held by one worker");

        Assert.Equal(Jobs, starts.Select(s => s.JobId).Distinct().Count());
        Assert.Equal(Jobs, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.True(kills + freezes > 0, "the chaos loop must have hit something");
        Assert.True(repeated <= bound, $"{repeated} repeated executions exceed {bound}");
        Assert.InRange(mostHeld, 0, Threads + ClaimAhead);
    }
}

public sealed class SqliteChaosTests(ITestOutputHelper output) : ChaosTests(output)
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlChaosTests(ITestOutputHelper output) : ChaosTests(output)
{
    protected override Engine Engine => Engine.PostgreSql;
}

/// <summary>
/// The database restarted in the middle of a run, on a server of the test's own: PostgreSQL stopped and started,
/// MariaDB crashed (SIGKILL) and recovered. Every job still finishes, and nobody is pruned or charged for the outage.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class DatabaseRestartTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_job_finishes_when_PostgreSQL_restarts_mid_run()
    {
        await using var server = await PostgresServer.StartAsync();
        await using var db = await TestDatabase.CreateOnAsync(server);
        await RunThroughOutageAsync(db, server.StopAsync, server.StartAgainAsync);
    }

    [Fact]
    public async Task Every_job_finishes_when_MariaDB_crashes_and_recovers_mid_run()
    {
        await using var server = await MariaDbServer.StartAsync();
        await using var db = await TestDatabase.CreateOnAsync(server);
        await RunThroughOutageAsync(db, server.CrashAsync, () => server.StartAgainAsync());
    }

    private async Task RunThroughOutageAsync(TestDatabase db, Func<Task> stop, Func<Task> start)
    {
        const int jobs = 600;
        await db.Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, jobs).Select(_ => new NewJob("chaos", "default", "{\"milliseconds\":20}", 0, 1000, null, 1000))], null), default);
        await using var app = await SupervisedApp.StartAsync(db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 2));
        await app.WaitForWorkersAsync(2);
        await Eventually.WaitUntilAsync(async () => await db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") >= 50, TimeSpan.FromSeconds(60), "the run gets going");

        await stop();
        await Task.Delay(TimeSpan.FromSeconds(3));
        await start();
        Assert.False(app.Supervisor.HasExited, "the supervisor survives the outage");

        await Eventually.WaitUntilAsync(
            async () =>
            {
                try
                {
                    return await db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == jobs;
                }
                catch (System.Data.Common.DbException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(120),
            $"all {jobs} jobs finish after the restart");
        Assert.Equal(0, await app.StopAsync());

        var starts = app.RunLog().Where(l => l.What == "start").ToList();
        output.WriteLine($"{db.Engine}: {jobs} jobs, {starts.Count} executions across a database restart");
        Assert.Equal(jobs, starts.Select(s => s.JobId).Distinct().Count());
        Assert.Equal(0, await db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
        Assert.Equal(0, await db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));

        // The outage (3 s) outlasted every lease (1.2 s): the workers fenced themselves and released their runs when the
        // database came back, and nobody pruned anyone or charged anything for it (DESIGN §2.5, §2.7).
        Assert.Equal(0, await db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE worker_losses > 0"));
        Assert.Equal(0, await db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'lost'"));
        output.WriteLine($"{await db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'released' AND cause = 'lease-lost'")} runs fenced during the outage and released uncharged");
    }
}

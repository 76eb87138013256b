using System.Globalization;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Keel.Tests.Processes;

/// <summary>
/// The lifecycle of real worker processes under a supervisor: deploys (SIGTERM restarts) that re-run nothing, poison
/// jobs that take no neighbour down, children dying together, a job that ignores its timeout — checked from the
/// database and the jobs' own run log, on every engine.
/// </summary>
[Collection(RealProcesses.Name)]
public abstract class LifecycleTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private async Task<IReadOnlyList<long>> InsertAsync(IEnumerable<(string Kind, int Milliseconds)> jobs)
        => await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. jobs.Select(j => new NewJob(j.Kind, "default", $"{{\"milliseconds\":{j.Milliseconds}}}", 0, 10, null))], null), default);

    private async Task<JobInfo> JobAsync(long id) => (await Db.Storage.JobGetAsync(id, default))!;

    private static string History(JobInfo job) => string.Join("; ", job.Runs.Select(r => $"{r.Outcome}/{r.Cause}/charged={r.Charged} pid {r.Runner?.Pid}"));

    [Fact]
    public async Task Ten_SIGTERM_restarts_while_short_jobs_drain_run_every_job_exactly_once()
    {
        var random = new Random(42);
        var ids = await InsertAsync(Enumerable.Range(0, 2000).Select(_ => ("recorded", random.Next(5, 50))));
        var runLog = Path.Combine(Path.GetTempPath(), "keel-runlog-deploy-" + Guid.NewGuid().ToString("N"));

        // The stop is under test, not the lease: a lease a loaded machine keeps (with the 1.2 s fast lease a second
        // without a renewal fences a worker, whose cancelled runs then run again — by design, and not a deploy's doing).
        var settings = SupervisedApp.FastSettings(workerProcesses: 2, threads: 4);
        settings["Keel:HeartbeatInterval"] = "00:00:00.500";
        settings["Keel:AliveThreshold"] = "00:00:10";
        try
        {
            for (var deploy = 0; deploy < 10; deploy++)
            {
                await using var app = await SupervisedApp.StartAsync(Db, settings, runLog: runLog);
                await app.WaitForWorkersAsync(2);
                await Task.Delay(300 + random.Next(400));
                Assert.Equal(0, await app.StopAsync());
                Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
            }

            await using (var last = await SupervisedApp.StartAsync(Db, settings, runLog: runLog))
            {
                await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == ids.Count, Patience, "every job finishes");
                Assert.Equal(0, await last.StopAsync());
                var starts = last.RunLog().Where(l => l.What == "start").GroupBy(l => l.JobId).ToDictionary(g => g.Key, g => g.Count());
                var rerun = starts.Where(s => s.Value > 1).Select(s => s.Key).ToList();
                output.WriteLine($"{Engine}: {ids.Count} jobs through 10 restarts; {rerun.Count} started more than once; {await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'released'")} claims released unstarted");
                var histories = await Task.WhenAll(rerun.Take(5).Select(async id => $"job {id}: {History(await JobAsync(id))}"));
                Assert.True(rerun.Count == 0, "re-run jobs: " + string.Join(", ", rerun.Take(10)) + "\n" + string.Join("\n", histories));
                Assert.Equal(ids.Count, starts.Count);
            }

            Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE attempts <> 1 OR worker_losses <> 0"));
            Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome <> 'released'"));
        }
        finally
        {
            Directory.Delete(runLog, recursive: true);
        }
    }

    [Fact]
    public async Task Poison_jobs_fail_with_their_cause_after_their_cap_and_no_neighbour_is_charged()
    {
        var jobs = Enumerable.Range(0, 200).Select(i => ("recorded", 30)).ToList();
        jobs.Insert(20, ("suicide", 0));
        jobs.Insert(60, ("failfast", 0));
        jobs.Insert(100, ("suicide", 0));
        jobs.Insert(140, ("failfast", 0));
        var ids = await InsertAsync(jobs);
        var poison = ids.Where((_, i) => jobs[i].Item1 != "recorded").ToList();
        var normal = ids.Except(poison).ToList();

        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 4));
        await Eventually.WaitUntilAsync(
            async () => await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions") == poison.Count
                        && await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == normal.Count,
            Patience,
            "every poison job fails and every other job finishes");

        foreach (var id in poison)
        {
            var job = await JobAsync(id);
            Assert.True((job.State, job.WorkerLosses) == (JobState.Failed, 3), $"poison job {id}: {job.State}, {job.WorkerLosses} losses: {History(job)}");
            Assert.All(job.Errors, e => Assert.Equal(WorkerLostCause.ExceptionType, e.ExceptionType));
            Assert.Contains(job.Kind == "failfast" ? "SIGABRT" : "SIGKILL", job.Errors[^1].Message, StringComparison.Ordinal);
            Assert.All(job.Runs.Where(r => r.Charged), r => Assert.Empty(r.SharedWith)); // Charged only when it ran alone.
        }

        var collateral = await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE kind = 'recorded' AND (worker_losses > 0 OR attempts <> 1)");
        output.WriteLine($"{Engine}: {poison.Count} poison jobs failed after {await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'lost'")} lost runs; {collateral} normal jobs charged");
        Assert.Equal(0, collateral);
        Assert.Equal(0, await app.StopAsync());
    }

    [Fact]
    public async Task Three_children_that_die_within_a_second_are_each_recovered_within_two_seconds()
    {
        var ids = await InsertAsync(Enumerable.Range(0, 3).Select(_ => ("recorded", 20_000)));
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 3, threads: 1));
        await Eventually.WaitUntilAsync(() => Task.FromResult(app.RunLog().Count(l => l.What == "start") == 3), Patience, "each worker runs one job");
        var owners = app.RunLog().Where(l => l.What == "start").Select(l => (l.JobId, l.Pid)).ToList();
        Assert.Equal(3, owners.Select(o => o.Pid).Distinct().Count());

        var killedAt = new Dictionary<long, DateTimeOffset>();
        foreach (var (jobId, pid) in owners)
        {
            killedAt[jobId] = DateTimeOffset.UtcNow;
            Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGKILL));
            await Task.Delay(300);
        }

        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'lost'") == 3, Patience, "the three claims are recovered");
        foreach (var id in ids)
        {
            var lost = (await JobAsync(id)).Runs.First(r => r.Outcome == RunOutcomes.Lost);
            var after = lost.EndedAt!.Value - killedAt[id];
            output.WriteLine($"{Engine}: job {id} recovered {after.TotalMilliseconds:0} ms after its worker was killed");
            Assert.True(after < TimeSpan.FromSeconds(2), $"job {id} recovered {after} after its worker was killed");
            Assert.Equal("process-exited", lost.Cause);
        }

        await app.WaitForWorkersAsync(3);
    }

    [Fact]
    public async Task A_job_that_ignores_its_timeout_gets_its_worker_replaced_and_is_charged_alone()
    {
        var ids = await InsertAsync([("recorded", 4_000), ("overtime", 60_000)]);
        var (neighbour, overtime) = (ids[0], ids[1]);
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 2));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(overtime)).State == JobState.Failed, Patience, "the job that ignores its timeout fails after its cap");
        await Eventually.WaitUntilAsync(async () => (await JobAsync(neighbour)).State == JobState.Finished, Patience, "its neighbour finishes");

        var job = await JobAsync(overtime);
        Assert.True(job.WorkerLosses == 3, History(job));
        Assert.All(job.Runs.Where(r => r.Outcome == RunOutcomes.Lost), r => Assert.Equal(("cancel-ignored", true), (r.Cause, r.Charged)));
        var first = await JobAsync(neighbour);
        Assert.True((first.WorkerLosses, first.Attempts) == (0, 1), History(first));
        Assert.Contains(first.Runs, r => r.Outcome == RunOutcomes.Lost && r.Cause == "cancel-ignored" && !r.Charged);
        Assert.Contains("did not stop when cancelled", app.Output, StringComparison.Ordinal);
        Assert.Equal(0, await app.StopAsync());
    }

    [Fact]
    public async Task A_SIGTERM_while_jobs_ignore_their_token_releases_their_claims_uncharged()
    {
        var ids = await InsertAsync([("stubborn", 30_000), ("stubborn", 30_000)]);
        var settings = SupervisedApp.FastSettings(workerProcesses: 1, threads: 2);
        settings["Keel:ShutdownTimeout"] = "00:00:00.300";
        await using var app = await SupervisedApp.StartAsync(Db, settings);
        await Eventually.WaitUntilAsync(() => Task.FromResult(app.RunLog().Count(l => l.What == "start") == 2), Patience, "both run");

        var stoppedAt = DateTimeOffset.UtcNow;
        Assert.Equal(0, await app.StopAsync());
        output.WriteLine($"{Engine}: stopped in {(DateTimeOffset.UtcNow - stoppedAt).TotalMilliseconds:0} ms with two jobs ignoring their token");

        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        foreach (var id in ids)
        {
            var job = await JobAsync(id);
            Assert.True((job.State, job.Attempts, job.WorkerLosses) == (JobState.Ready, 0, 0), History(job));
            Assert.Contains(job.Runs, r => !r.Charged && r.Cause is "stopped" or "stop");
        }
    }
}

public sealed class SqliteLifecycleTests(ITestOutputHelper output) : LifecycleTests(output)
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlLifecycleTests(ITestOutputHelper output) : LifecycleTests(output)
{
    protected override Engine Engine => Engine.PostgreSql;
}

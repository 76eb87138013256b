using Keel.Storage;
using Keel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Keel.Tests.Processes;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealProcesses
{
    public const string Name = "real processes";
}

/// <summary>
/// Real OS processes, killed and frozen for real: the process-mode supervisor, its worker children and the
/// invariants of DESIGN §2 checked from the database afterwards, on every engine.
/// </summary>
[Collection(RealProcesses.Name)]
public abstract class ProcessRecoveryTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private async Task<long> InsertAsync(string kind, int milliseconds)
        => (await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob(kind, "default", $"{{\"milliseconds\":{milliseconds}}}", 0, 10, null, kind == "chaos" ? 1000 : 2)], null), default))[0];

    private async Task<JobInfo> JobAsync(long id) => (await Db.Storage.JobGetAsync(id, default))!;

    private async Task<int> OwnerPidAsync(SupervisedApp app, long jobId)
    {
        JobInfo job = null!;
        await Eventually.WaitUntilAsync(async () => (job = await JobAsync(jobId)).State == JobState.Claimed && app.RunLog().Any(l => l.JobId == jobId), Patience, $"job {jobId} is running");
        return (await app.ProcessesAsync()).Single(p => p.Id == job.ClaimedByProcessId).Pid;
    }

    private async Task AssertCleanStopAsync(SupervisedApp app)
    {
        Assert.Equal(0, await app.StopAsync());
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    [Fact]
    public async Task A_worker_killed_mid_job_has_its_claim_recovered_within_two_seconds_and_the_job_runs_again()
    {
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 2));
        await app.WaitForWorkersAsync(2);
        var id = await InsertAsync("recorded", 3000);
        var pid = await OwnerPidAsync(app, id);

        var killedAt = DateTimeOffset.UtcNow;
        Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGKILL));
        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Finished, Patience, "the job finishes on another worker");

        var job = await JobAsync(id);
        var lost = Assert.Single(job.Errors);
        var recoveredAfter = lost.OccurredAt - killedAt;
        var rerunAfter = DateTimeOffset.FromUnixTimeMilliseconds(app.RunLog().Last(l => l.What == "start" && l.JobId == id).At) - killedAt;
        output.WriteLine($"{Engine}: claim recovered {recoveredAfter.TotalMilliseconds:0} ms after SIGKILL; job started again after {rerunAfter.TotalMilliseconds:0} ms");
        Assert.True(recoveredAfter < TimeSpan.FromSeconds(2), $"recovered {recoveredAfter} after the kill");
        Assert.Equal(WorkerLostCause.ExceptionType, lost.ExceptionType);
        Assert.Contains("killed by signal 9 (SIGKILL)", lost.Message, StringComparison.Ordinal);
        Assert.Equal((2, 1), (job.Attempts, job.WorkerLosses));
        Assert.Equal(2, app.RunLog().Count(l => l.What == "start" && l.JobId == id));
        await app.WaitForWorkersAsync(2); // the killed worker was replaced
        await AssertCleanStopAsync(app);
    }

    [Fact]
    public async Task A_frozen_worker_loses_its_claim_after_the_threshold_and_its_late_result_is_rejected()
    {
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 2));
        await app.WaitForWorkersAsync(2);
        var id = await InsertAsync("stubborn", 1500);
        var pid = await OwnerPidAsync(app, id);

        var stoppedAt = DateTimeOffset.UtcNow;
        Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGSTOP));
        try
        {
            await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).Errors.Count == 1, Patience, "the frozen worker's claim is recovered");
        }
        finally
        {
            SupervisedApp.Signal(pid, SupervisedApp.SIGCONT);
        }

        var recoveredAfter = (await JobAsync(id)).Errors[0].OccurredAt - stoppedAt;
        output.WriteLine($"{Engine}: frozen worker's claim recovered {recoveredAfter.TotalMilliseconds:0} ms after SIGSTOP (threshold 1200 ms)");

        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Finished, Patience, "the job finishes elsewhere");

        // Resumed past its lease, the worker fences itself at once (DESIGN §2.9): the job ignores its cancellation, so the
        // worker exits to be replaced — unless the run ended first, and then its late result is rejected. Either way
        // nothing of the late run is written.
        await Eventually.WaitUntilAsync(
            () => Task.FromResult(!SupervisedApp.IsAlive(pid) || app.Output.Contains($"Late result for job {id} rejected", StringComparison.Ordinal)),
            Patience,
            "the resumed worker exits or its late result is rejected");

        var job = await JobAsync(id);
        Assert.Equal((JobState.Finished, 2, 1), (job.State, job.Attempts, job.WorkerLosses));
        Assert.Equal("lease-expired", await CauseAsync(id));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
        Assert.Equal((RunOutcomes.Lost, "lease-expired", true), (job.Runs[0].Outcome, job.Runs[0].Cause, job.Runs[0].Charged));
        Assert.Equal(JobRun.Finished, job.Runs[^1].Outcome);
        Assert.NotEqual(pid, job.Runs[^1].Runner!.Pid);
        await AssertCleanStopAsync(app); // The job has one terminal record.
    }

    [Fact]
    public async Task A_job_that_kills_its_worker_every_time_fails_after_max_worker_losses_plus_one_runs()
    {
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 1));
        await app.WaitForWorkersAsync(1);
        var id = await InsertAsync("suicide", 0);

        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Failed, Patience, "the poison job fails");

        var job = await JobAsync(id);
        Assert.Equal((3, 3), (job.Attempts, job.WorkerLosses));
        Assert.Equal(3, app.RunLog().Count(l => l.What == "start" && l.JobId == id));
        Assert.All(job.Errors, e => Assert.Contains("killed by signal 9", e.Message, StringComparison.Ordinal));
        Assert.Equal(1, await Db.ScalarAsync($"SELECT count(*) FROM keel_failed_executions WHERE job_id = {id} AND exception_type = 'Keel.WorkerLostException' AND cause = 'process-exited'"));
        await app.WaitForWorkersAsync(1);
        await AssertCleanStopAsync(app);
    }

    [Fact]
    public async Task SIGTERM_to_a_worker_during_a_long_job_releases_it_and_another_worker_finishes_it()
    {
        var settings = SupervisedApp.FastSettings(workerProcesses: 2, threads: 2);
        settings["Keel:ShutdownTimeout"] = "00:00:00.300";
        await using var app = await SupervisedApp.StartAsync(Db, settings);
        await app.WaitForWorkersAsync(2);
        var id = await InsertAsync("recorded", 4000);
        var pid = await OwnerPidAsync(app, id);

        Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGTERM));
        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Finished, Patience, "the released job finishes");

        var job = await JobAsync(id);
        Assert.Equal((1, 0), (job.Attempts, job.WorkerLosses)); // a graceful release is not a lost worker
        Assert.Empty(job.Errors);
        var starts = app.RunLog().Where(l => l.What == "start" && l.JobId == id).ToList();
        Assert.Equal(2, starts.Count);
        Assert.NotEqual(pid, starts[1].Pid);
        Assert.Contains("stopped cleanly", app.Output, StringComparison.Ordinal);
        await AssertCleanStopAsync(app);
    }

    [Fact]
    public async Task SIGTERM_to_the_supervisor_stops_every_child_and_leaves_unfinished_jobs_ready()
    {
        var settings = SupervisedApp.FastSettings(workerProcesses: 2, threads: 2);
        settings["Keel:ShutdownTimeout"] = "00:00:00.300";
        await using var app = await SupervisedApp.StartAsync(Db, settings);
        var workers = await app.WaitForWorkersAsync(2);
        var id = await InsertAsync("recorded", 30_000);
        await OwnerPidAsync(app, id);

        await AssertCleanStopAsync(app);

        var job = await JobAsync(id);
        Assert.Equal((JobState.Ready, 0), (job.State, job.Attempts));
        Assert.All(workers, w => Assert.False(SupervisedApp.IsAlive(w.Pid), $"worker pid {w.Pid} should have exited"));
    }

    [Fact]
    public async Task Children_stop_by_themselves_when_their_supervisor_is_killed()
    {
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 2));
        var workers = await app.WaitForWorkersAsync(2);
        Assert.True(SupervisedApp.Signal(app.Supervisor.Id, SupervisedApp.SIGKILL));
        await Eventually.WaitUntilAsync(
            async () => (await app.ProcessesAsync()).All(p => p.Kind == "Supervisor"),
            Patience,
            "the orphaned children deregister");
        await Eventually.WaitUntilAsync(() => Task.FromResult(workers.All(w => !SupervisedApp.IsAlive(w.Pid))), Patience, "the orphaned children exit");
    }

    [Fact]
    public async Task SIGQUIT_makes_the_supervisor_exit_at_once_and_the_next_start_recovers_what_it_left_claimed()
    {
        long id;
        await using (var first = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 1)))
        {
            await first.WaitForWorkersAsync(1);
            id = await InsertAsync("recorded", 30_000);
            await OwnerPidAsync(first, id);
            Assert.True(SupervisedApp.Signal(first.Supervisor.Id, 3));
            await first.Supervisor.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(131, first.Supervisor.ExitCode);
        }

        // Nothing released the claim: the worker quit at once. The next supervisor on this host sees the pid is gone.
        Assert.Equal(JobState.Claimed, (await JobAsync(id)).State);
        await using var second = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 1));
        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State != JobState.Claimed || (await JobAsync(id)).Errors.Count > 0, Patience, "the abandoned claim is recovered");
        var job = await JobAsync(id);
        var runs = string.Join("; ", job.Runs.Select(r => $"{r.Outcome} {r.Cause} charged={r.Charged} {r.Detail}"));
        Assert.True(job.Errors.Count == 1, "one charged loss, got runs: " + runs);
        Assert.Equal(WorkerLostCause.ExceptionType, job.Errors[0].ExceptionType);
        Assert.Equal((1, 1), (job.Attempts, job.WorkerLosses));
    }

    [Fact]
    public async Task A_SIGTERM_while_the_children_are_still_starting_is_honoured()
    {
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 2));
        await Eventually.WaitUntilAsync(async () => (await app.ProcessesAsync()).Any(p => p.Kind == "Supervisor"), Patience, "the supervisor registers");
        Assert.Equal(0, await app.StopAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    [Fact]
    public async Task A_concurrency_limit_of_one_is_never_exceeded_even_when_a_holder_is_killed()
    {
        const int jobs = 50;
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 2, threads: 2));
        await app.WaitForWorkersAsync(2);
        var limited = Enumerable.Range(0, jobs).Select(_ => new NewJob("limited", "default", "{\"milliseconds\":60}", 0, 10, null, 5)
        {
            ConcurrencyKey = "limited/shared",
            ConcurrencyLimit = 1,
            ConcurrencyDuration = TimeSpan.FromMinutes(5),
        });
        var ids = await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. limited], null), default);
        Assert.Equal(jobs - 1, await Db.ScalarAsync("SELECT count(*) FROM keel_blocked_executions"));

        // Kill whichever worker holds the permit in the middle of a run.
        await Eventually.WaitUntilAsync(() => Task.FromResult(app.RunLog().Count(l => l.What == "end") >= 10), Patience, "some jobs finish");
        long holder = 0;
        var pid = 0;
        await Eventually.WaitUntilAsync(
            () =>
            {
                var log = app.RunLog();
                var running = log.Where(l => l.What == "start" && !log.Any(e => e.What == "end" && e.JobId == l.JobId && e.Attempt == l.Attempt)).ToList();
                (holder, pid) = running.Count == 1 ? (running[0].JobId, running[0].Pid) : (0, 0);
                return Task.FromResult(holder != 0);
            },
            Patience,
            "a limited job is running");
        Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGKILL));

        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == jobs, Patience, "every limited job finishes");
        await AssertCleanStopAsync(app);

        // Each run lasts from its start to its end, or — for the killed run — to the job's next start.
        var log = app.RunLog();
        var runs = log.Where(l => l.What == "start").Select(start =>
        {
            var end = log.FirstOrDefault(l => l.What == "end" && l.JobId == start.JobId && l.Attempt == start.Attempt && l.Pid == start.Pid);
            var next = log.FirstOrDefault(l => l.What == "start" && l.JobId == start.JobId && l.At >= start.At && l != start);
            return (start.JobId, From: start.At, To: end.JobId != 0 ? end.At : next.At);
        }).OrderBy(r => r.From).ToList();
        for (var i = 1; i < runs.Count; i++)
        {
            Assert.True(runs[i].From >= runs[i - 1].To, $"job {runs[i].JobId} started at {runs[i].From} while job {runs[i - 1].JobId} ran until {runs[i - 1].To}");
        }

        Assert.Equal(jobs, runs.Select(r => r.JobId).Distinct().Count());
        Assert.Contains(runs, r => r.JobId == holder);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_blocked_executions"));
    }

    private async Task<string> CauseAsync(long jobId)
    {
        await using var connection = await Db.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT cause FROM keel_job_errors WHERE job_id = {jobId} ORDER BY id LIMIT 1";
        return (string)(await command.ExecuteScalarAsync())!;
    }
}

public sealed class SqliteProcessRecoveryTests(ITestOutputHelper output) : ProcessRecoveryTests(output)
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlProcessRecoveryTests(ITestOutputHelper output) : ProcessRecoveryTests(output)
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlProcessRecoveryTests(ITestOutputHelper output) : ProcessRecoveryTests(output)
{
    protected override Engine Engine => Engine.MySql;
}

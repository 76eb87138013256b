using Keel.Runtime;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Keel.Tests.Processes;

/// <summary>
/// Cancel of running jobs in process mode, with real worker children (docs/running-jobs.md): a job that honours its
/// token stops in its child; a child whose cancelled job ignores its token is replaced by its supervisor, the job ends
/// cancelled and its neighbour goes back uncharged and finishes — checked from the database and the jobs' own run log.
/// </summary>
[Collection(RealProcesses.Name)]
public abstract class CancelProcessTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private KeelAdmin Admin() => new(Db.Storage, Options.Create(new KeelOptions()), NullLoggerFactory.Instance, new KeelClock(TimeProvider.System), new JobSignal());

    private async Task<IReadOnlyList<long>> InsertAsync(params (string Kind, int Milliseconds)[] jobs)
        => await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. jobs.Select(j => new NewJob(j.Kind, "default", $"{{\"milliseconds\":{j.Milliseconds}}}", 0, 10, null))], null), default);

    private async Task<JobInfo> JobAsync(long id) => (await Db.Storage.JobGetAsync(id, default))!;

    private static string History(JobInfo job) => string.Join("; ", job.Runs.Select(r => $"{r.Outcome}/{r.Cause}/charged={r.Charged} pid {r.Runner?.Pid}"));

    [Fact]
    public async Task A_job_that_honours_its_token_stops_in_its_child_and_ends_cancelled()
    {
        var ids = await InsertAsync(("recorded", 60_000));
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 2));
        await Eventually.WaitUntilAsync(async () => (await JobAsync(ids[0])).State == JobState.Claimed && app.RunLog().Any(l => l.What == "start" && l.JobId == ids[0]), Patience, "the job runs");
        var worker = (await app.ProcessesAsync()).Single(p => p.Kind == "Worker").Pid;

        Assert.Equal(CancelResult.Requested, await Admin().CancelAsync(ids[0], "stop the import"));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(ids[0])).State == JobState.Discarded, Patience, "the job ends cancelled");
        Assert.Contains(app.RunLog(), l => l.What == "cancel" && l.JobId == ids[0]);
        var job = await JobAsync(ids[0]);
        Assert.True(job.Runs.Any(r => r.Outcome == RunOutcomes.Cancelled && r.Cause == RunCauses.CancelHonoured && r.Detail == "stop the import"), History(job));
        Assert.Equal(worker, (await app.ProcessesAsync()).Single(p => p.Kind == "Worker").Pid); // no child was replaced
        Assert.Equal(0, await app.StopAsync());
    }

    [Fact]
    public async Task A_child_whose_cancelled_job_ignores_its_token_is_replaced_and_its_neighbour_goes_back_uncharged()
    {
        var ids = await InsertAsync(("stubborn", 60_000), ("recorded", 4_000));
        var (stubborn, neighbour) = (ids[0], ids[1]);
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 2));
        await Eventually.WaitUntilAsync(() => Task.FromResult(app.RunLog().Count(l => l.What == "start") == 2), Patience, "both run");
        var first = (await app.ProcessesAsync()).Single(p => p.Kind == "Worker").Pid;

        Assert.Equal(CancelResult.Requested, await Admin().CancelAsync(stubborn, "stop the stubborn one"));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(stubborn)).State == JobState.Discarded, Patience, "the stubborn job ends cancelled");
        await Eventually.WaitUntilAsync(async () => (await JobAsync(neighbour)).State == JobState.Finished, Patience, "its neighbour finishes on the new child");
        var cancelled = await JobAsync(stubborn);
        Assert.True(cancelled.Runs.Any(r => r.Outcome == RunOutcomes.Cancelled && r.Cause == RunCauses.CancelEscalated && !r.Charged), History(cancelled));
        var finished = await JobAsync(neighbour);
        Assert.True((finished.Attempts, finished.WorkerLosses) == (1, 0), History(finished));
        Assert.True(finished.Runs.Any(r => r.Outcome == RunOutcomes.Lost && r.Cause == "cancel-escalated" && !r.Charged), History(finished));
        Assert.DoesNotContain(app.RunLog(), l => l.What == "start" && l.JobId == stubborn && l.Pid != first);
        Assert.Contains("a cancelled job did not stop within its grace", app.Output, StringComparison.Ordinal);
        Assert.Equal(0, await app.StopAsync());
    }

    [Fact]
    public async Task A_child_whose_job_cancelled_to_resume_ignores_its_token_is_replaced_and_the_job_runs_again_on_the_new_child_uncharged()
    {
        var ids = await InsertAsync(("stubborn", 5_000)); // Long enough to still run when the cancel arrives on a loaded machine.
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 2));
        await Eventually.WaitUntilAsync(() => Task.FromResult(app.RunLog().Any(l => l.What == "start" && l.JobId == ids[0])), Patience, "the job runs");
        var first = (await app.ProcessesAsync()).Single(p => p.Kind == "Worker").Pid;

        Assert.Equal(CancelResult.Requested, await Admin().CancelAsync(ids[0], new CancelOptions { Reason = "move it off this host", Resume = true }));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(ids[0])).State == JobState.Finished, Patience, "the job goes back and runs to its end on the new child");
        var job = await JobAsync(ids[0]);
        Assert.True((job.Attempts, job.WorkerLosses) == (1, 0), History(job));
        Assert.True(job.Runs.Any(r => r.Outcome == RunOutcomes.Lost && r.Cause == "cancel-escalated" && !r.Charged), History(job));
        Assert.DoesNotContain(job.Runs, r => r.Outcome == RunOutcomes.Cancelled);
        var starts = app.RunLog().Where(l => l.What == "start" && l.JobId == ids[0]).Select(l => l.Pid).ToList();
        Assert.Equal(2, starts.Count);
        Assert.Equal(first, starts[0]);
        Assert.NotEqual(first, starts[1]); // The second run began in the replacement, after the first child was gone.
        Assert.Equal(0, await app.StopAsync());
    }
}

public sealed class SqliteCancelProcessTests : CancelProcessTests
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlCancelProcessTests : CancelProcessTests
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlCancelProcessTests : CancelProcessTests
{
    protected override Engine Engine => Engine.MySql;
}

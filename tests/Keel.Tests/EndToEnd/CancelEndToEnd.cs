using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Tests.EndToEnd;

/// <summary>
/// Cancel of running jobs in-process (docs/running-jobs.md): a run that honours its token ends cancelled with the
/// reason readable from its context; one that ignores it is abandoned after the grace, its slot comes back and the
/// worker keeps working; neither is retried — on every engine.
/// </summary>
public abstract class CancelEndToEnd : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private static void Configure(KeelOptions o, int threads = 1)
    {
        o.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        o.AliveThreshold = TimeSpan.FromSeconds(3);
        o.CancellationGrace = TimeSpan.FromMilliseconds(300);
        o.Workers.Add(KeelHost.Worker(threads));
    }

    private async Task<JobInfo> JobAsync(long id) => (await Db.Storage.JobGetAsync(id, default))!;

    [Fact]
    public async Task A_running_job_that_honours_its_token_ends_cancelled_with_the_reason_and_is_not_retried()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var id = await client.EnqueueAsync<FencedJob, SleepArgs>(new SleepArgs(60_000));
        await Eventually.WaitUntilAsync(async () => recorder.Runs.ContainsKey(id) && (await JobAsync(id)).State == JobState.Claimed, Patience, "the job runs");

        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(id, "customer asked to stop"));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Discarded, Patience, "the cancelled job is discarded");
        var ended = Assert.Single(recorder.Ended);
        Assert.Equal((id, true, "cancelled"), (ended.JobId, ended.Cancelled, ended.Reason));
        Assert.Equal("customer asked to stop", Assert.Single(recorder.Contexts).CancellationMessage);
        var run = Assert.Single((await JobAsync(id)).Runs, r => r.Outcome == RunOutcomes.Cancelled);
        Assert.Equal((RunCauses.CancelHonoured, "customer asked to stop", false), (run.Cause, run.Detail, run.Charged));
        Assert.Equal(CancelResult.AlreadyEnded, await admin.CancelAsync(id));

        // The worker goes on, and the cancelled job never runs again.
        var next = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(next)), Patience, "the next job runs");
        Assert.Equal(1, recorder.Runs[id]);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_running_job_that_ignores_its_token_is_abandoned_its_slot_comes_back_and_the_worker_keeps_working()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o, threads: 1));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var stubborn = await client.EnqueueAsync<IgnoresCancellationJob, SleepArgs>(new SleepArgs(20_000));
        await Eventually.WaitUntilAsync(async () => recorder.Runs.ContainsKey(stubborn) && (await JobAsync(stubborn)).State == JobState.Claimed, Patience, "the stubborn job runs");
        var next = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));

        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(stubborn, "stop the stubborn one"));

        // Its one slot comes back after the grace although the stubborn run sleeps on.
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(next)), Patience, "the next job runs in the slot taken back");
        Assert.True(recorder.Ended.IsEmpty, "the abandoned run was still sleeping");
        var job = await JobAsync(stubborn);
        Assert.Equal(JobState.Discarded, job.State);
        var run = Assert.Single(job.Runs, r => r.Outcome == RunOutcomes.Cancelled);
        Assert.Equal((RunCauses.CancelEscalated, false), (run.Cause, run.Charged));
        Assert.StartsWith("stop the stubborn one", run.Detail, StringComparison.Ordinal);
        Assert.Equal(1, recorder.Runs[stubborn]);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_job_cancelled_to_resume_stops_goes_back_uncounted_and_continues_from_its_checkpoint()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var id = await client.EnqueueAsync<ResumableJob, ItemsToResume>(new ItemsToResume(80, 50)); // 4 s: far from done when the cancel arrives.
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Items.Count(i => i.JobId == id) >= 5), Patience, "the job is some items in");

        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(id, new CancelOptions { Reason = "deploying the importer", Resume = true }));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Finished, Patience, "the resumed job finishes");
        var first = recorder.Ended.First(e => e.JobId == id);
        Assert.Equal((true, "resume"), (first.Cancelled, first.Reason));
        Assert.Equal("deploying the importer", recorder.Contexts.First(c => c.JobId == id).CancellationMessage);
        var starts = recorder.Starts.Where(s => s.JobId == id).Select(s => s.Start).ToList();

        // One stop to resume, so two runs — plus one for each run a loaded machine's stalled heartbeat fenced (a
        // `released` row of its own, uncharged), which the job resumes from its checkpoint just the same.
        var history = (await JobAsync(id)).Runs;
        var fenced = history.Count(r => r.Outcome == RunOutcomes.Released && r.Cause == "lease-lost" && r.Detail?.Contains("not started", StringComparison.Ordinal) != true);
        Assert.True(starts.Count == 2 + fenced, $"{starts.Count} runs started; the history: {string.Join("; ", history.Select(r => $"{r.Outcome}/{r.Cause}: {r.Detail}"))}");
        Assert.Equal(0, starts[0]);
        Assert.True(starts[1] >= 5, $"the second run started at item {starts[1]}, not where the first stopped");
        Assert.Equal(Enumerable.Range(0, 80), recorder.Items.Where(i => i.JobId == id).Select(i => i.Item)); // Every item once, in order.
        var job = await JobAsync(id);
        var run = Assert.Single(job.Runs, r => r.Cause == RunCauses.CancelResumed);
        Assert.Equal((RunOutcomes.Released, false), (run.Outcome, run.Charged));
        Assert.StartsWith("deploying the importer", run.Detail, StringComparison.Ordinal);
        Assert.Equal((1, 0), (job.Attempts, job.WorkerLosses)); // The stopped run did not count.
        Assert.Equal(1, recorder.MaxConcurrent);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_job_cancelled_to_resume_that_ignores_its_token_keeps_its_claim_until_its_code_returns_so_it_never_runs_twice_at_once()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o, threads: 2));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var stubborn = await client.EnqueueAsync<IgnoresCancellationJob, SleepArgs>(new SleepArgs(4_000)); // Still asleep 900 ms after the cancel, however loaded the machine.
        await Eventually.WaitUntilAsync(async () => recorder.Runs.ContainsKey(stubborn) && (await JobAsync(stubborn)).State == JobState.Claimed, Patience, "the stubborn job runs");

        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(stubborn, new CancelOptions { Resume = true }));

        // Past the grace its code still sleeps: the job stays claimed by it rather than starting a second run beside it.
        await Task.Delay(TimeSpan.FromMilliseconds(900));
        Assert.Equal((JobState.Claimed, 1), ((await JobAsync(stubborn)).State, recorder.Runs[stubborn]));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(stubborn)).State == JobState.Finished, Patience, "the job goes back once its code returned, and runs again to the end");
        Assert.Equal(2, recorder.Runs[stubborn]);
        Assert.Equal(1, recorder.MaxConcurrent);
        var run = Assert.Single((await JobAsync(stubborn)).Runs, r => r.Cause == RunCauses.CancelResumed);
        Assert.Equal((RunOutcomes.Released, false), (run.Outcome, run.Charged));
        await host.StopAsync();
    }

    [Fact]
    public async Task Progress_reported_in_a_tight_loop_is_readable_while_the_job_runs_and_its_last_value_wins()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var id = await client.EnqueueAsync<ReportsProgressJob, SleepArgs>(new SleepArgs(60_000));

        await Eventually.WaitUntilAsync(async () => (await client.GetJobAsync(id))?.Progress == 1.0, Patience, "the last progress report is written");
        var job = (await client.GetJobAsync(id))!;
        Assert.Equal((JobState.Claimed, "1000 of 1000"), (job.State, job.ProgressMessage));
        var claim = Assert.Single(await admin.ListClaimsAsync());
        Assert.Equal((1.0, "1000 of 1000"), (claim.Progress, claim.ProgressMessage));

        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(id));
        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Discarded, Patience, "the job ends cancelled");
        Assert.Null((await JobAsync(id)).Progress);
        await host.StopAsync();
    }

    [Fact]
    public async Task Lines_a_job_logs_through_its_context_and_its_result_are_kept_with_it()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        await host.StartAsync();
        var id = await client.EnqueueAsync<LogsAndResultJob, CountArgs>(new CountArgs(100, "crm.csv"));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(id)).State == JobState.Finished, Patience, "the job finishes");
        var job = (await client.GetJobAsync(id))!;
        Assert.Equal(
            [("Information", "importing 100 rows"), ("Warning", "row 7 skipped: no email"), ("Error", "row 9 failed (System.InvalidOperationException: bad row)")],
            job.Logs.Select(l => (l.Level, l.Message)));
        Assert.All(job.Logs, l => Assert.Equal(1, l.Attempt));
        Assert.Equal(new ImportResult(98, "crm.csv"), job.GetResult<ImportResult>());
        await host.StopAsync();
    }

    [Fact]
    public async Task A_cancel_of_a_job_that_is_not_running_yet_discards_it_before_any_run()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => Configure(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        var later = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Delay = TimeSpan.FromMinutes(5) });
        await host.StartAsync();

        Assert.Equal(CancelResult.Cancelled, await admin.CancelAsync(later, "not needed"));
        Assert.Equal(JobState.Discarded, (await JobAsync(later)).State);
        Assert.False(recorder.Runs.ContainsKey(later));
        await host.StopAsync();
    }
}

public sealed class SqliteCancelEndToEnd : CancelEndToEnd
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlCancelEndToEnd : CancelEndToEnd
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlCancelEndToEnd : CancelEndToEnd
{
    protected override Engine Engine => Engine.MySql;
}

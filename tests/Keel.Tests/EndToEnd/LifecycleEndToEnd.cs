using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Keel.Tests.EndToEnd;

/// <summary>
/// A worker's own lifecycle in-process, with the faults injected in front of a real store: lost claim replies
/// (reconcile), heartbeats that get no answer (self-fencing), a prune while a job ignores its cancellation, a job that
/// ignores its timeout — on every engine.
/// </summary>
public abstract class LifecycleEndToEnd : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private static void FastLiveness(KeelOptions o, int threads = 1)
    {
        o.HeartbeatInterval = TimeSpan.FromMilliseconds(100);
        o.AliveThreshold = TimeSpan.FromMilliseconds(1500);
        o.PruneInterval = TimeSpan.FromMilliseconds(100);
        o.CancellationGrace = TimeSpan.FromMilliseconds(250);
        o.Workers.Add(KeelHost.Worker(threads));
    }

    private async Task<JobInfo> JobAsync(long id) => (await Db.Storage.JobGetAsync(id, default))!;

    [Fact]
    public async Task A_claim_whose_reply_was_lost_is_released_uncharged_at_the_next_heartbeat_and_runs_once()
    {
        StorageFaults faults = null!;
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => FastLiveness(o), wrapStorage: inner => (IKeelStorage)(object)(faults = StorageFaults.Wrap(inner).Faults));
        var client = host.Services.GetRequiredService<IKeelClient>();
        faults.LoseClaimReplies(1);
        var ids = await client.EnqueueManyAsync([.. Enumerable.Range(0, 3).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i)))]);
        await host.StartAsync();

        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == 3, Patience, "every job finishes");
        await host.StopAsync();

        Assert.All(ids, id => Assert.Equal(1, recorder.Runs[id]));
        var reconciled = (await Task.WhenAll(ids.Select(JobAsync))).Where(j => j.Runs.Any(r => r.Cause == "reconcile")).ToList();
        var job = Assert.Single(reconciled);
        Assert.Equal((0, 1), (job.WorkerLosses, job.Attempts));
        Assert.Equal([(RunOutcomes.Released, false), (JobRun.Finished, true)], job.Runs.Select(r => (r.Outcome, r.Charged)));
    }

    [Fact]
    public async Task A_worker_whose_heartbeats_get_no_answer_cancels_its_job_before_its_lease_ends_and_runs_it_again_uncharged()
    {
        StorageFaults faults = null!;
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => FastLiveness(o), wrapStorage: inner => (IKeelStorage)(object)(faults = StorageFaults.Wrap(inner).Faults));
        var client = host.Services.GetRequiredService<IKeelClient>();
        await host.StartAsync();
        var id = await client.EnqueueAsync<FencedJob, SleepArgs>(new SleepArgs(30_000));
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(id)), Patience, "the job runs");

        var silentSince = DateTimeOffset.UtcNow;
        faults.BlackHoleHeartbeats(true);
        await Eventually.WaitUntilAsync(() => Task.FromResult(!recorder.Ended.IsEmpty), Patience, "the run is cancelled");
        var cancelledAfter = DateTimeOffset.UtcNow - silentSince;
        var ended = Assert.Single(recorder.Ended);
        Assert.Equal((id, true, "lease-lost"), (ended.JobId, ended.Cancelled, ended.Reason));
        Assert.True(cancelledAfter < TimeSpan.FromMilliseconds(1500), $"fenced {cancelledAfter} after the heartbeats went silent: before the 1.5 s lease could end");

        // The run's end is recorded by the job itself; its release is written right after, on the completion's road.
        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions") == 0, Patience, "the fenced run's claim is released");

        faults.BlackHoleHeartbeats(false);
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs[id] == 2), Patience, "the job runs again once the lease is renewed");
        var job = await JobAsync(id);
        Assert.Equal((JobState.Claimed, 0, 0), (job.State, job.WorkerLosses, job.Attempts));
        Assert.Equal((RunOutcomes.Released, "lease-lost", false), (job.Runs[0].Outcome, job.Runs[0].Cause, job.Runs[0].Charged));
        Assert.True(job.Runs[^1].ClaimId > job.Runs[0].ClaimId, "the new run holds a larger fencing token");
        await host.StopAsync();
    }

    [Fact]
    public async Task After_a_prune_a_job_that_ignores_its_cancellation_is_abandoned_and_the_worker_keeps_working()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => FastLiveness(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var stubborn = await client.EnqueueAsync<IgnoresCancellationJob, SleepArgs>(new SleepArgs(10_000));
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(stubborn)), Patience, "the stubborn job runs");
        var owner = (await JobAsync(stubborn)).ClaimedByProcessId!.Value;

        // Waiting, and ahead of the stubborn job's own retry: on a loaded machine the retry may be due by the time the
        // worker has registered anew, and with one slot it would take it first and sleep in it.
        var next = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Priority = -10 });
        Assert.NotNull(await admin.PruneProcessAsync(owner)); // An operator declares the live worker dead.

        // Its one slot comes back after the cancellation grace although the stubborn run sleeps on: the worker registers
        // anew and runs the next job (and the stubborn job's own retry).
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(next)), Patience, "the worker keeps working");
        Assert.True(recorder.Ended.IsEmpty, $"the abandoned run was still sleeping; the stubborn job ran {recorder.Runs[stubborn]} time(s): {string.Join("; ", (await JobAsync(stubborn)).Runs.Select(r => $"{r.Outcome}/{r.Cause}"))}");
        Assert.Contains((await JobAsync(stubborn)).Runs, r => r.Outcome == RunOutcomes.Lost && r.Cause == "operator");
        await host.StopAsync();
    }

    [Fact]
    public async Task A_job_that_ignores_its_timeout_is_failed_and_abandoned_and_its_slot_comes_back()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => FastLiveness(o));
        var client = host.Services.GetRequiredService<IKeelClient>();
        await host.StartAsync();
        var overtime = await client.EnqueueAsync<OvertimeJob, SleepArgs>(new SleepArgs(5_000));
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(overtime)), Patience, "the overtime job runs");
        var next = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Priority = -10 }); // Ahead of the overtime job's retry.

        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(next)), Patience, "the next job runs in the slot taken back");
        var job = await JobAsync(overtime);
        Assert.Contains(job.Errors, e => e.ExceptionType == typeof(JobTimeoutException).FullName && e.Message.Contains("did not stop", StringComparison.Ordinal));
        Assert.Contains(job.Runs, r => r.Outcome == RunOutcomes.Abandoned && r.Cause == "cancel-ignored");
        Assert.Contains(job.Runs, r => r.Outcome == RunOutcomes.Failed && r.Charged);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_stop_waits_for_running_jobs_and_releases_one_that_ignores_its_token_uncharged()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o =>
        {
            FastLiveness(o, threads: 2);
            o.ShutdownTimeout = TimeSpan.FromSeconds(2);

            // This test is about the stop, not the fence: a lease a loaded CI machine keeps renewing through the
            // stop (with the fast settings' 1.5 s lease a second without a renewal fenced the worker first).
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(250);
            o.AliveThreshold = TimeSpan.FromSeconds(10);
        });
        var client = host.Services.GetRequiredService<IKeelClient>();
        await host.StartAsync();
        var stubborn = await client.EnqueueAsync<IgnoresCancellationJob, SleepArgs>(new SleepArgs(6_000));
        var quick = await client.EnqueueAsync<SleepingJob, SleepArgs>(new SleepArgs(100));
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(stubborn) && recorder.Runs.ContainsKey(quick)), Patience, "both run");

        await host.StopAsync();

        Assert.Equal(JobState.Finished, (await JobAsync(quick)).State); // Finished within the shutdown timeout: written, not released.
        var job = await JobAsync(stubborn);
        Assert.Equal((JobState.Ready, 0, 0), (job.State, job.Attempts, job.WorkerLosses));
        Assert.Contains(job.Runs, r => r.Outcome == RunOutcomes.Released && r.Cause == "stop" && !r.Charged);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    [Fact]
    public void The_host_stop_timeout_covers_keels_whole_stop()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => o.ShutdownTimeout = TimeSpan.FromSeconds(40));
        var keel = host.Services.GetRequiredService<IOptions<KeelOptions>>().Value;
        var hostOptions = host.Services.GetRequiredService<IOptions<HostOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(40) + keel.CancellationGrace + TimeSpan.FromSeconds(8), keel.StopBudget);
        Assert.True(hostOptions.ShutdownTimeout >= keel.StopBudget, $"host stop timeout {hostOptions.ShutdownTimeout} < Keel's stop budget {keel.StopBudget}");
    }
}

public sealed class SqliteLifecycleEndToEnd : LifecycleEndToEnd
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlLifecycleEndToEnd : LifecycleEndToEnd
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlLifecycleEndToEnd : LifecycleEndToEnd
{
    protected override Engine Engine => Engine.MySql;
}

using Keel.Runtime;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keel.Tests.EndToEnd;

/// <summary>Limits, uniqueness, queues and the operator's job actions through the public API, on real hosts.</summary>
public abstract class ManagementEndToEnd : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private static IKeelClient Client(IHost host) => host.Services.GetRequiredService<IKeelClient>();

    private static IKeelAdmin Admin(IHost host) => host.Services.GetRequiredService<IKeelAdmin>();

    private Task WaitForStateAsync(IHost host, long id, JobState state)
        => Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == state, Patience, $"job {id} is {state}");

    [Fact]
    public async Task Between_prune_intervals_maintenance_leaves_expired_heartbeats_for_the_next_full_pass()
    {
        var options = new KeelOptions { PruneInterval = TimeSpan.FromHours(1), LivenessCheckInterval = TimeSpan.FromMilliseconds(100) };
        var maintenance = new Maintenance(Db.Storage, options, NullLogger.Instance, new KeelClock(TimeProvider.System), () => new HashSet<long>());
        maintenance.AssumeConnectedFor(TimeSpan.FromHours(1));
        Assert.Empty(await maintenance.RunDueAsync(default)); // The first pass is a full one.

        // Alive by every certain sign (this very process, its session open) but silent for an hour.
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        var stale = await Db.Storage.ProcessRegisterAsync(
            new ProcessRegisterParams("worker-stale", "Worker", Environment.ProcessId, ProcessIdentity.Hostname, new DateTimeOffset(self.StartTime.ToUniversalTime(), TimeSpan.Zero), null, "{}", DateTimeOffset.UtcNow.AddHours(-1)),
            default);

        Assert.Empty(await maintenance.RunDueAsync(default));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));

        var pruned = Assert.Single(await maintenance.RunOnceAsync(default));
        Assert.Equal((stale, "lease-expired"), (pruned.Process.Id, pruned.Cause.Code));
    }

    [Fact]
    public async Task A_per_key_limit_runs_one_job_per_account_at_a_time_and_different_accounts_in_parallel()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(KeelHost.Worker(8)));
        var requests = Enumerable.Range(0, 12).Select(i => JobRequest.Create<PerAccountJob, AccountArgs>(new AccountArgs(i % 2, 100))).ToList();
        var ids = await Client(host).EnqueueManyAsync(requests);
        Assert.Equal(10, await Db.ScalarAsync("SELECT count(*) FROM keel_blocked_executions"));
        Assert.Equal("per-account/1", (await Client(host).GetJobAsync(ids[1]))!.ConcurrencyKey);
        await host.StartAsync();

        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL") == 12, Patience, "all jobs finish");
        await host.StopAsync();
        Assert.Equal(new Dictionary<string, int> { ["0"] = 1, ["1"] = 1 }, recorder.MaxConcurrentByKey.OrderBy(kv => kv.Key).ToDictionary()); // never two of one account
        Assert.InRange(recorder.MaxConcurrent, 1, 2);
    }

    [Fact]
    public async Task Enqueueing_with_a_taken_unique_key_returns_the_existing_job()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder);
        var options = new EnqueueOptions { UniqueKey = "invoice-42", Delay = TimeSpan.FromHours(1) };
        var first = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1), options);
        var second = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(2), options);
        var bulk = await Client(host).EnqueueManyAsync([JobRequest.Create<CountingJob, CountArgs>(new CountArgs(3), options), JobRequest.Create<CountingJob, CountArgs>(new CountArgs(4), options with { UniqueKey = "invoice-43" })]);
        Assert.Equal(first, second);
        Assert.Equal(first, bulk[0]);
        Assert.NotEqual(first, bulk[1]);
        Assert.Equal("count/invoice-42", (await Client(host).GetJobAsync(first))!.UniqueKey);
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
    }

    [Fact]
    public async Task A_paused_queue_keeps_its_jobs_until_resumed_from_another_host()
    {
        var recorder = new Recorder();
        using var worker = await KeelHost.StartAsync(Db, recorder);
        using var operatorHost = KeelHost.Build(Db, new Recorder(), o => o.ProcessJobs = false);
        await Admin(operatorHost).PauseQueueAsync("reports");
        var paused = await Client(operatorHost).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Queue = "reports" });
        var open = await Client(operatorHost).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(2));
        await WaitForStateAsync(worker, open, JobState.Finished);
        await Task.Delay(300);
        Assert.Equal(JobState.Ready, (await Client(worker).GetJobAsync(paused))!.State);
        var queue = Assert.Single(await Admin(operatorHost).ListQueuesAsync(), q => q.Name == "reports");
        Assert.Equal((1L, true), (queue.Ready, queue.Paused));

        await Admin(operatorHost).ResumeQueueAsync("reports");
        await WaitForStateAsync(worker, paused, JobState.Finished);
        await worker.StopAsync();
    }

    [Fact]
    public async Task Operators_clear_a_queue_cancel_run_now_and_retry_failed_jobs_in_bulk()
    {
        using var host = KeelHost.Build(Db, new Recorder(), o => o.ProcessJobs = false);
        var admin = Admin(host);
        var client = Client(host);
        var doomed = await client.EnqueueManyAsync([.. Enumerable.Range(0, 700).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i), new EnqueueOptions { Queue = "bulk" }))]);
        var progress = new List<long>();
        Assert.Equal(700, await admin.ClearQueueAsync("bulk"));
        Assert.Equal(JobState.Discarded, (await client.GetJobAsync(doomed[699]))!.State);

        var later = await client.ScheduleAsync<CountingJob, CountArgs>(new CountArgs(1), TimeSpan.FromDays(1));
        Assert.True(await admin.RunJobNowAsync(later));
        Assert.Equal(JobState.Ready, (await client.GetJobAsync(later))!.State);
        Assert.True(await admin.CancelJobAsync(later));
        Assert.False(await admin.CancelJobAsync(later));

        var failing = await client.EnqueueManyAsync([.. Enumerable.Range(0, 600).Select(i => JobRequest.Create<AlwaysFailsJob, CountArgs>(new CountArgs(i), new EnqueueOptions { MaxAttempts = 1 }))]);
        using (var workers = await KeelHost.StartAsync(Db, new Recorder(), o => o.Workers.Add(KeelHost.Worker(10))))
        {
            await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions") == 600, Patience, "all fail");
            await workers.StopAsync();
        }

        var retried = await admin.RetryJobsAsync(null, new JobFilter(Kind: "always-fails", ExceptionType: typeof(InvalidOperationException).FullName), new ListProgress(progress));
        Assert.Equal(600, retried);
        Assert.Equal(600, progress[^1]);
        Assert.Equal(600, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal((JobState.Ready, 0), ((await client.GetJobAsync(failing[0]))!.State, (await client.GetJobAsync(failing[0]))!.Attempts));
    }

    [Fact]
    public async Task Maintenance_deletes_finished_jobs_past_retention_and_keeps_failed_ones()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder);
        var done = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));
        var failed = await Client(host).EnqueueAsync<DiscardingJob, CountArgs>(new CountArgs(1));
        await WaitForStateAsync(host, done, JobState.Finished);
        await WaitForStateAsync(host, failed, JobState.Failed);
        await host.StopAsync();

        var maintenance = new Maintenance(Db.Storage, new KeelOptions { ClearFinishedJobsAfter = TimeSpan.Zero }, NullLogger.Instance, new KeelClock(TimeProvider.System), () => new HashSet<long>());
        await Task.Delay(50);
        Assert.Equal(1, await maintenance.ClearFinishedJobsAsync(default));
        Assert.Null(await Client(host).GetJobAsync(done));
        Assert.Equal(JobState.Failed, (await Client(host).GetJobAsync(failed))!.State);
    }
}

/// <summary>Records progress synchronously (Progress&lt;T&gt; posts to the thread pool and may report late).</summary>
internal sealed class ListProgress(List<long> values) : IProgress<long>
{
    public void Report(long value) => values.Add(value);
}

public sealed class SqliteManagementEndToEnd : ManagementEndToEnd
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlManagementEndToEnd : ManagementEndToEnd
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlManagementEndToEnd : ManagementEndToEnd
{
    protected override Engine Engine => Engine.MySql;
}

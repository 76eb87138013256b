using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Keel.Tests.EndToEnd;

/// <summary>Real hosts, real workers, a real database: the behaviours a user relies on, on every engine.</summary>
public abstract class WorkerEndToEnd : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private static IKeelClient Client(IHost host) => host.Services.GetRequiredService<IKeelClient>();

    private Task WaitForCountAsync(string sql, long expected)
        => Eventually.WaitUntilAsync(async () => await Db.ScalarAsync(sql) == expected, Patience, $"`{sql}` returns {expected}");

    [Theory]
    [InlineData(null, 5, 84)] // the default: up to twenty times the threads ahead, as many as two round trips need, once short runs have been seen
    [InlineData(0, 1, 4)]
    public async Task A_thousand_jobs_on_four_threads_each_finish_exactly_once(int? claimAhead, long leastMostHeld, long mostHeld)
    {
        var recorder = new Recorder();
        var worker = KeelHost.Worker(4);
        worker.ClaimAhead = claimAhead;
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(worker));
        var ids = await Client(host).EnqueueManyAsync([.. Enumerable.Range(0, 1000).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i)))]);
        await host.StartAsync();

        // Claims are taken with completions in one round trip, and ahead of the threads while runs are short; the worker
        // must still never hold more than threads plus claim-ahead, nor run more than its threads at once.
        using var sampling = new CancellationTokenSource();
        var mostClaimsHeld = SampleMostAsync("SELECT count(*) FROM keel_claimed_executions", sampling.Token);
        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 1000);
        await sampling.CancelAsync();
        Assert.InRange(await mostClaimsHeld, leastMostHeld, mostHeld);
        await host.StopAsync();

        Assert.Equal(1000, ids.Distinct().Count());
        Assert.Equal(1000, recorder.Runs.Count);
        Assert.All(recorder.Runs.Values, n => Assert.Equal(1, n));
        Assert.True(recorder.MaxConcurrent <= 4, $"at most 4 jobs may run at once; saw {recorder.MaxConcurrent}");
        Assert.Equal(1000, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE attempts = 1"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    /// <summary>The largest value <paramref name="sql"/> returned, sampled as fast as the database answers until cancelled.</summary>
    private Task<long> SampleMostAsync(string sql, CancellationToken stop) => Task.Run(async () =>
    {
        long most = 0;
        while (!stop.IsCancellationRequested)
        {
            most = Math.Max(most, await Db.ScalarAsync(sql));
        }

        return most;
    });

    [Fact]
    public async Task A_worker_does_not_claim_ahead_while_its_runs_are_long()
    {
        var recorder = new Recorder();
        var worker = KeelHost.Worker(2);
        worker.ClaimAhead = 4;
        using var host = await KeelHost.StartAsync(Db, recorder, o => o.Workers.Add(worker));
        using var sampling = new CancellationTokenSource();
        var mostClaimsHeld = SampleMostAsync("SELECT count(*) FROM keel_claimed_executions", sampling.Token);
        await Client(host).EnqueueManyAsync([.. Enumerable.Range(0, 10).Select(_ => JobRequest.Create<SleepingJob, SleepArgs>(new SleepArgs(250)))]);

        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 10);
        await sampling.CancelAsync();
        await host.StopAsync();

        // 250 ms runs are far longer than ten round trips: a job claimed ahead would only wait, so none is.
        Assert.InRange(await mostClaimsHeld, 1, 2);
        Assert.True(recorder.MaxConcurrent <= 2, $"at most 2 jobs may run at once; saw {recorder.MaxConcurrent}");
    }

    /// <summary>
    /// Warms a two-thread worker up with short runs (so it claims ahead), then enqueues two sleepers that take both
    /// threads and four short jobs behind them, and waits until all six are claimed: the four wait, claimed ahead.
    /// </summary>
    private async Task<(IHost Host, long[] Sleepers, long[] Waiting)> FourJobsClaimedAheadAsync(Recorder recorder, int sleepMilliseconds)
    {
        var worker = KeelHost.Worker(2);
        worker.ClaimAhead = 4;

        // How far a worker claims ahead follows its runs measured against its round trips (threads x 2 round trips ÷
        // run): a no-op run on a loaded machine can take as long as a local round trip, and the worker then claims
        // fewer than 4 ahead. Completion replies 50 ms late (a slow network) keep the 4 whatever the machine's load.
        var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(worker), wrapStorage: inner =>
        {
            var (storage, faults) = StorageFaults.Wrap(inner);
            faults.DelayCompletionReplies(TimeSpan.FromMilliseconds(50));
            return storage;
        });
        await host.StartAsync();
        var client = Client(host);
        await client.EnqueueManyAsync([.. Enumerable.Range(0, 40).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i, "warm-up")))]);
        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 40);

        var ids = await client.EnqueueManyAsync(
        [
            .. Enumerable.Range(0, 2).Select(_ => JobRequest.Create<SleepingJob, SleepArgs>(new SleepArgs(sleepMilliseconds), new EnqueueOptions { Priority = -1 })),
            .. Enumerable.Range(0, 4).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i, "behind"))),
        ]);
        await WaitForCountAsync("SELECT count(*) FROM keel_claimed_executions", 6);
        return (host, [.. ids.Take(2)], [.. ids.Skip(2)]);
    }

    [Fact]
    public async Task A_graceful_stop_gives_jobs_claimed_ahead_back_unstarted_and_uncharged()
    {
        var recorder = new Recorder();
        using var returned = new MetricRecorder("keel.job.claimed_ahead.returned");
        var (host, sleepers, waiting) = await FourJobsClaimedAheadAsync(recorder, 1500);
        using (host)
        {
            await host.StopAsync();
        }

        Assert.All(sleepers, id => Assert.Equal(1, recorder.Runs.GetValueOrDefault(id)));
        Assert.All(waiting, id => Assert.False(recorder.Runs.ContainsKey(id), $"job {id} was claimed ahead and must not have started"));
        var list = string.Join(',', waiting);
        Assert.Equal(4, await Db.ScalarAsync($"SELECT count(*) FROM keel_ready_executions WHERE job_id IN ({list})"));
        Assert.Equal(4, await Db.ScalarAsync($"SELECT count(*) FROM keel_jobs WHERE id IN ({list}) AND attempts = 0"));
        Assert.Equal(4, await Db.ScalarAsync($"SELECT count(*) FROM keel_job_runs WHERE job_id IN ({list}) AND outcome = 'released' AND cause = 'stop' AND NOT charged AND detail LIKE '%not started%'"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.True(returned.Sum("keel.reason", "stop") >= 4, "each job given back is counted by keel.job.claimed_ahead.returned");
    }

    [Fact]
    public async Task Jobs_claimed_ahead_that_wait_too_long_go_back_and_the_worker_stops_claiming_ahead()
    {
        var recorder = new Recorder();
        using var returned = new MetricRecorder("keel.job.claimed_ahead.returned");
        var (host, sleepers, waiting) = await FourJobsClaimedAheadAsync(recorder, 3000);
        using (host)
        {
            var list = string.Join(',', waiting);

            // Half a second without a thread: back to ready, for any worker; this one, its threads taken, leaves them.
            await WaitForCountAsync($"SELECT count(*) FROM keel_ready_executions WHERE job_id IN ({list})", 4);
            Assert.Equal(4, await Db.ScalarAsync($"SELECT count(*) FROM keel_job_runs WHERE job_id IN ({list}) AND outcome = 'released' AND cause = 'claim-ahead' AND NOT charged"));
            Assert.True(returned.Sum("keel.reason", "claim-ahead") >= 4, "each job given back is counted by keel.job.claimed_ahead.returned");
            using var sampling = new CancellationTokenSource(TimeSpan.FromMilliseconds(700));
            Assert.Equal(2, await SampleMostAsync("SELECT count(*) FROM keel_claimed_executions", sampling.Token));
            Assert.All(waiting, id => Assert.False(recorder.Runs.ContainsKey(id), $"job {id} must not have run while both threads slept"));

            await WaitForCountAsync($"SELECT count(*) FROM keel_jobs WHERE id IN ({list}) AND finished_at IS NOT NULL", 4);
            await host.StopAsync();
            Assert.All(waiting, id => Assert.Equal(1, recorder.Runs[id]));
            Assert.Equal(4, await Db.ScalarAsync($"SELECT count(*) FROM keel_jobs WHERE id IN ({list}) AND attempts = 1"));
            Assert.All(sleepers, id => Assert.Equal(1, recorder.Runs[id]));
        }
    }

    [Fact]
    public async Task Two_hosts_competing_for_one_queue_never_run_a_job_twice()
    {
        var first = new Recorder();
        var second = new Recorder();
        using var a = await KeelHost.StartAsync(Db, first, o => o.Workers.Add(KeelHost.Worker(3)));
        using var b = await KeelHost.StartAsync(Db, second, o => o.Workers.Add(KeelHost.Worker(3)));
        // Each job takes 20 ms, so one host alone would need 4 s for all of them: the other host, idle and polling, has
        // every chance to take part. With instant jobs one host could drain the queue before the other's first poll.
        await Client(a).EnqueueManyAsync([.. Enumerable.Range(0, 300).Select(_ => JobRequest.Create<SleepingJob, SleepArgs>(new SleepArgs(20)))]);
        await Client(b).EnqueueManyAsync([.. Enumerable.Range(0, 300).Select(_ => JobRequest.Create<SleepingJob, SleepArgs>(new SleepArgs(20)))]);

        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 600);
        await Task.WhenAll(a.StopAsync(), b.StopAsync());

        var all = first.Runs.Concat(second.Runs).ToList();
        Assert.Equal(600, all.Count);
        Assert.Equal(600, all.Select(kv => kv.Key).Distinct().Count());
        Assert.All(all, kv => Assert.Equal(1, kv.Value));
        Assert.True(first.Total > 0 && second.Total > 0, $"both hosts should take part (first {first.Total}, second {second.Total})");
    }

    [Fact]
    public async Task A_failing_job_retries_with_backoff_then_lands_in_failed_with_its_errors()
    {
        var recorder = new Recorder();
        var backoff = new BackoffOptions { Base = TimeSpan.FromMilliseconds(200), Jitter = 0 };
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(KeelHost.Worker(2)));
        host.Services.GetRequiredService<Keel.Registry.JobRegistry>().GetByType(typeof(AlwaysFailsJob)).Options.Backoff = backoff;
        await host.StartAsync();
        var id = await Client(host).EnqueueAsync<AlwaysFailsJob, CountArgs>(new CountArgs(1));

        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Failed, Patience, "the job fails for good");
        await host.StopAsync();

        var job = (await Client(host).GetJobAsync(id))!;
        Assert.Equal(3, job.Attempts);
        Assert.Equal(3, recorder.Runs[id]);
        Assert.Equal([1, 2, 3], job.Errors.Select(e => e.Attempt));
        Assert.All(job.Errors, e => Assert.Equal(typeof(InvalidOperationException).FullName, e.ExceptionType));
        Assert.Equal("always fails (attempt 3)", job.Errors[^1].Message);
        Assert.Contains("AlwaysFailsJob", job.Errors[0].StackTrace, StringComparison.Ordinal);
        // Backoff doubles: the second retry waits at least 2 × base after the second failure.
        Assert.True(job.Errors[1].OccurredAt - job.Errors[0].OccurredAt >= TimeSpan.FromMilliseconds(200));
        Assert.True(job.Errors[2].OccurredAt - job.Errors[1].OccurredAt >= TimeSpan.FromMilliseconds(400));
        Assert.Equal(1, await Db.ScalarAsync($"SELECT count(*) FROM keel_failed_executions WHERE job_id = {id} AND attempt = 3"));
    }

    [Fact]
    public async Task A_discard_on_exception_fails_the_job_without_retrying()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder);
        var id = await Client(host).EnqueueAsync<DiscardingJob, CountArgs>(new CountArgs(1));
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Failed, Patience, "the job fails");
        await host.StopAsync();
        var job = (await Client(host).GetJobAsync(id))!;
        Assert.Equal(1, job.Attempts);
        Assert.Equal(typeof(ArgumentOutOfRangeException).FullName, Assert.Single(job.Errors).ExceptionType);
    }

    [Fact]
    public async Task A_job_over_its_timeout_is_cancelled_and_fails_with_a_timeout_error()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder);
        var id = await Client(host).EnqueueAsync<TimingOutJob, SleepArgs>(new SleepArgs(30_000));
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Failed, Patience, "the job times out");
        await host.StopAsync();
        var error = Assert.Single((await Client(host).GetJobAsync(id))!.Errors);
        Assert.Equal(typeof(JobTimeoutException).FullName, error.ExceptionType);
        Assert.Contains("timeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Args_that_do_not_deserialize_fail_that_job_alone_with_a_clear_error()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder);
        var bad = (await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("count", "default", "{\"n\":\"not a number\"}", 0, 5, null)], null), default))[0];
        var good = await Client(host).EnqueueManyAsync([.. Enumerable.Range(0, 20).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i)))]);
        await host.StartAsync();

        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(bad))!.State == JobState.Failed, Patience, "the bad job fails");
        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 20);
        await host.StopAsync();

        var job = (await Client(host).GetJobAsync(bad))!;
        Assert.Equal(1, job.Attempts);
        var error = Assert.Single(job.Errors);
        Assert.Equal(typeof(JobArgumentsException).FullName, error.ExceptionType);
        Assert.Contains("do not deserialize", error.Message, StringComparison.Ordinal);
        Assert.All(good, id => Assert.Equal(1, recorder.Runs[id]));
    }

    [Fact]
    public async Task An_unknown_kind_fails_the_job_not_the_worker()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder);
        var unknown = (await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("no-such-kind", "default", "{}", 0, 5, null)], null), default))[0];
        await host.StartAsync();
        var after = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));

        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(unknown))!.State == JobState.Failed, Patience, "the unknown job fails");
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(after))!.State == JobState.Finished, Patience, "the next job still runs");
        await host.StopAsync();

        var error = Assert.Single((await Client(host).GetJobAsync(unknown))!.Errors);
        Assert.Equal(typeof(UnknownJobKindException).FullName, error.ExceptionType);
        Assert.Contains("no-such-kind", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Queue_order_beats_priority_and_priority_then_id_orders_a_queue()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(KeelHost.Worker(1, "urgent", "batch*", "*")));
        var client = Client(host);
        await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(0, "other"), new EnqueueOptions { Queue = "other", Priority = -100 });
        await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(0, "batch-b p5"), new EnqueueOptions { Queue = "batch-b", Priority = 5 });
        await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(0, "batch-a p1"), new EnqueueOptions { Queue = "batch-a", Priority = 1 });
        await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(0, "urgent p9 first"), new EnqueueOptions { Queue = "urgent", Priority = 9 });
        await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(0, "urgent p3"), new EnqueueOptions { Queue = "urgent", Priority = 3 });
        await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(0, "urgent p9 second"), new EnqueueOptions { Queue = "urgent", Priority = 9 });
        await host.StartAsync();

        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 6);
        await host.StopAsync();
        Assert.Equal(["urgent p3", "urgent p9 first", "urgent p9 second", "batch-a p1", "batch-b p5", "other"], recorder.Order.ToArray());
    }

    [Fact]
    public async Task A_pass_does_not_serve_a_later_queue_while_a_claim_made_with_completions_is_in_flight()
    {
        // A three-thread worker on "first, second" runs one job of "first". A job of each queue is enqueued, and the
        // pass that claims for the two idle threads is held on "first" before it reaches the database. The running job
        // then completes, and its completion claims the "first" job along in the same round trip, whose reply is held:
        // that claim is in flight. Let go, the pass finds "first" empty. Serving "second" now (a thread is free) would
        // start that job before the "first" one the worker has already claimed.
        var recorder = new Recorder();
        var worker = KeelHost.Worker(3, "first", "second");
        worker.ClaimAhead = 0;
        worker.DirectHandOff = false; // The loop claims, not an enqueue handing a job to an idle slot.
        worker.PollingInterval = TimeSpan.FromSeconds(10); // No polling pass meanwhile: what wakes the loop is the claims' ends.
        StorageFaults faults = null!;
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(worker), wrapStorage: inner =>
        {
            (var storage, faults) = StorageFaults.Wrap(inner);
            return storage;
        });
        await host.StartAsync();
        var client = Client(host);
        await client.EnqueueAsync<SleepingJob, SleepArgs>(new SleepArgs(1000), new EnqueueOptions { Queue = "first" });
        await WaitForCountAsync("SELECT count(*) FROM keel_claimed_executions", 1);

        // The pass that claimed it goes on to "second" (empty then): the jobs below are enqueued once it is over, and once
        // the wake-ups of that enqueue (PostgreSQL's notification too) have come and gone.
        await Eventually.WaitUntilAsync(() => Task.FromResult(faults.ClaimCallsOf("second") > 0), Patience, "the pass looks at \"second\"");
        await Task.Delay(300);
        var passHeld = faults.HoldNextClaimOf("first");
        faults.HoldRepliesThatClaimAlong(true);
        try
        {
            await client.EnqueueManyAsync(
            [
                JobRequest.Create<CountingJob, CountArgs>(new CountArgs(0, "first"), new EnqueueOptions { Queue = "first" }),
                JobRequest.Create<CountingJob, CountArgs>(new CountArgs(0, "second"), new EnqueueOptions { Queue = "second" }),
            ]);
            await passHeld.WaitAsync(Patience);
            await Eventually.WaitUntilAsync(() => Task.FromResult(faults.HeldClaimAlongReplies == 1), Patience, "the completion claims the \"first\" job along, its reply held");
            faults.ReleaseHeldClaim();
            await Task.Delay(500);

            var firstClaims = await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE j.queue = 'first'");
            var countClaims = await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE j.kind = 'count'");
            var finished = await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL");
            Assert.True(firstClaims == 1, $"first claims {firstClaims}, count claims {countClaims}, finished {finished}, order {string.Join(',', recorder.Order)}");
            Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE j.queue = 'second'"));
            Assert.Empty(recorder.Order);
        }
        finally
        {
            faults.ReleaseHeldClaim();
            faults.HoldRepliesThatClaimAlong(false);
        }

        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL AND kind = 'count'", 2);
        await host.StopAsync();

        // Once the claim's reply is in, both start (on the two threads, so in either order), each once.
        Assert.Equal(["first", "second"], recorder.Order.Order().ToArray());
        Assert.Equal(1, recorder.Runs.Values.Max());
    }

    [Fact]
    public async Task A_worker_on_a_tricky_queue_name_runs_only_that_queue()
    {
        const string tricky = "it's;50%_off";
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(KeelHost.Worker(2, tricky)));
        var mine = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Queue = tricky });
        var lookalike = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(2), new EnqueueOptions { Queue = "its;50x_off" });
        await host.StartAsync();
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(mine))!.State == JobState.Finished, Patience, "the tricky queue's job runs");
        await Task.Delay(300);
        await host.StopAsync();
        Assert.Equal(JobState.Ready, (await Client(host).GetJobAsync(lookalike))!.State);
        Assert.Equal(tricky, (await Client(host).GetJobAsync(mine))!.Queue);
    }

    [Fact]
    public async Task A_scheduled_job_runs_after_its_time_not_before()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder);
        var enqueuedAt = DateTimeOffset.UtcNow;
        var id = await Client(host).ScheduleAsync<CountingJob, CountArgs>(new CountArgs(1), TimeSpan.FromMilliseconds(600));
        Assert.Equal(JobState.Scheduled, (await Client(host).GetJobAsync(id))!.State);
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Finished, Patience, "the scheduled job runs");
        await host.StopAsync();
        var job = (await Client(host).GetJobAsync(id))!;
        Assert.True(job.FinishedAt >= enqueuedAt.AddMilliseconds(600), $"finished at {job.FinishedAt:O}, scheduled for {enqueuedAt.AddMilliseconds(600):O}");
    }

    [Fact]
    public async Task A_rolled_back_transactional_enqueue_leaves_no_job_and_a_committed_one_runs()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder);
        var client = Client(host);
        await using (var connection = await Db.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await client.EnqueueAsync(JobRequest.Create<CountingJob, CountArgs>(new CountArgs(1)), transaction);
            await transaction.RollbackAsync();
        }

        long committed;
        await using (var connection = await Db.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            committed = await client.EnqueueAsync(JobRequest.Create<CountingJob, CountArgs>(new CountArgs(2)), transaction);
            await transaction.CommitAsync();
        }

        await Eventually.WaitUntilAsync(async () => (await client.GetJobAsync(committed))!.State == JobState.Finished, Patience, "the committed job runs");
        await host.StopAsync();
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Single(recorder.Runs);
    }

    [Fact]
    public async Task Graceful_stop_cancels_jobs_past_the_shutdown_timeout_and_releases_them_to_ready()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder, o =>
        {
            o.ShutdownTimeout = TimeSpan.FromMilliseconds(300);
            o.Workers.Add(KeelHost.Worker(2));
        });
        var slow = await Client(host).EnqueueAsync<SleepingJob, SleepArgs>(new SleepArgs(60_000));
        var quick = await Client(host).EnqueueAsync<SleepingJob, SleepArgs>(new SleepArgs(100));
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(slow))!.State == JobState.Claimed, Patience, "the slow job is claimed");
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(quick)), Patience, "the quick job starts");

        await host.StopAsync();

        var slowJob = (await Client(host).GetJobAsync(slow))!;
        Assert.Equal(JobState.Ready, slowJob.State);
        Assert.Equal(0, slowJob.Attempts);
        Assert.Equal(JobState.Finished, (await Client(host).GetJobAsync(quick))!.State);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    [Fact]
    public async Task A_worker_registers_a_process_row_while_it_runs()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder, o => o.Workers.Add(KeelHost.Worker(2, "a", "b*")));
        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Worker'") == 1, Patience, "the worker registers");
        Assert.Equal(Environment.ProcessId, await Db.ScalarAsync("SELECT pid FROM keel_processes WHERE kind = 'Worker'"));
        await host.StopAsync();
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    [Fact]
    public async Task A_local_enqueue_wakes_an_idle_worker_without_waiting_for_its_poll()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder, o =>
        {
            var worker = KeelHost.Worker(2);
            worker.PollingInterval = TimeSpan.FromHours(1);
            o.Workers.Add(worker);
        });
        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Worker'") == 1, Patience, "the worker registers");
        await Task.Delay(200); // Let the first poll come back empty: from here on only a wake-up can find the job.
        var id = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Finished, TimeSpan.FromSeconds(30), "the woken worker runs the job");
        await host.StopAsync();
    }

    [Fact]
    public async Task An_enqueue_from_another_host_wakes_an_idle_worker_on_engines_that_notify()
    {
        var recorder = new Recorder();
        using var worker = await KeelHost.StartAsync(Db, recorder, o =>
        {
            var entry = KeelHost.Worker(2);
            entry.PollingInterval = TimeSpan.FromHours(1);
            o.Workers.Add(entry);
        });
        using var producer = KeelHost.Build(Db, new Recorder(), o => o.ProcessJobs = false);
        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Worker'") == 1, Patience, "the worker registers");
        await Task.Delay(300); // the first poll has come back empty; the worker now sleeps for an hour unless woken
        var id = await Client(producer).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));
        if (Engine == Engine.PostgreSql)
        {
            await Eventually.WaitUntilAsync(async () => (await Client(worker).GetJobAsync(id))!.State == JobState.Finished, TimeSpan.FromSeconds(30), "LISTEN/NOTIFY wakes the other host's worker");
        }
        else
        {
            // SQLite and MariaDB/MySQL have no cross-process notification: the job waits for the next poll.
            await Task.Delay(500);
            Assert.Equal(JobState.Ready, (await Client(worker).GetJobAsync(id))!.State);
        }

        await worker.StopAsync();
    }

    [Fact]
    public async Task A_worker_whose_process_row_was_pruned_registers_anew_and_keeps_working()
    {
        var recorder = new Recorder();
        using var host = await KeelHost.StartAsync(Db, recorder);
        await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Worker'") == 1, Patience, "the worker registers");
        var first = await Db.ScalarAsync("SELECT id FROM keel_processes WHERE kind = 'Worker'");
        await Db.ExecuteAsync("DELETE FROM keel_processes");

        var id = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Finished, Patience, "the job runs under the new registration");
        var second = await Db.ScalarAsync("SELECT id FROM keel_processes WHERE kind = 'Worker'");
        Assert.NotEqual(first, second);
        await host.StopAsync();
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
    }

    /// <summary>
    /// The store chosen by <c>Keel:Database</c> alone, in the form each engine's provider reads (MariaDB/MySQL: a
    /// <c>mysql://</c> URI, since <c>Server=</c> is refused as ambiguous).
    /// </summary>
    [Fact]
    public async Task The_database_can_come_from_the_Keel_Database_setting()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, settings: new Dictionary<string, string?> { ["Keel:Database"] = Db.Setting }, useDatabaseSetting: true);
        await host.StartAsync();
        var id = await Client(host).EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1));
        await Eventually.WaitUntilAsync(async () => (await Client(host).GetJobAsync(id))!.State == JobState.Finished, Patience, "the job runs");
        await host.StopAsync();
        Assert.Equal(Engine switch { Engine.Sqlite => "sqlite", Engine.MySql => "mysql", _ => "postgresql" }, host.Services.GetRequiredService<IKeelStorage>().Engine);
    }

}

public sealed class SqliteWorkerEndToEnd : WorkerEndToEnd
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlWorkerEndToEnd : WorkerEndToEnd
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlWorkerEndToEnd : WorkerEndToEnd
{
    protected override Engine Engine => Engine.MySql;
}

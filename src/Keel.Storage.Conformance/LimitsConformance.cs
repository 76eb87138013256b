using Keel.Storage;

namespace Keel.Storage.Conformance;

/// <summary>Concurrency limits, unique jobs and the operator's job and queue actions, on every engine.</summary>
public abstract class LimitsConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);


    private static NewJob Limited(string key = "k/1", int limit = 2, DateTimeOffset? at = null, bool discard = false, int priority = 0)
        => new NewJob("test", "default", "{}", priority, 3, at) { ConcurrencyKey = key, ConcurrencyLimit = limit, ConcurrencyDuration = TimeSpan.FromMinutes(5), DiscardOnConflict = discard };

    private static NewJob Unique(string key, DateTimeOffset? at = null) => new NewJob("test", "default", "{}", 0, 3, at) { UniqueKey = key };

    private async Task<IReadOnlyList<long>> InsertAsync(params NewJob[] jobs) => await Storage.JobsInsertAsync(new JobsInsertParams(jobs, T0), default);

    private async Task<long> RegisterAsync() => await Storage.ProcessRegisterAsync(new ProcessRegisterParams("w-" + Guid.NewGuid().ToString("N")[..8], "Worker", 1, "elsewhere", T0, null, "{}", T0), default);

    private async Task<JobState> StateAsync(long id) => (await Storage.JobGetAsync(id, default))!.State;

    private async Task<JobState[]> StatesAsync(IEnumerable<long> ids) => await Task.WhenAll(ids.Select(StateAsync));

    private async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(long process, int limit = 10) => await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, limit, T0), default);

    private async Task CompleteAsync(long process, ClaimedJob claim) => await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claim.Ref], T0, true), default);

    private async Task AssertPermitsWithinLimitAsync()
        => Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_semaphores WHERE value > limit_value OR value < 0"));

    [Fact]
    public async Task Completing_a_limited_job_that_is_deleted_on_completion_gives_its_permit_to_the_next()
    {
        var ids = await InsertAsync(Limited(limit: 1), Limited(limit: 1), Unique("test/u"));
        Assert.Equal([JobState.Ready, JobState.Blocked, JobState.Ready], await StatesAsync(ids));
        var process = await RegisterAsync();
        var claims = await ClaimAsync(process);
        Assert.Equal(2, claims.Count);

        // PreserveFinishedJobs = false: the job rows go in the statement that completes them.
        var done = await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [.. claims.Select(c => c.Ref)], T0, false), default);

        Assert.Equal(claims.Select(c => c.ClaimId).Order(), done.Order());
        Assert.Null(await Storage.JobGetAsync(ids[0], default));
        Assert.Equal(JobState.Ready, await StateAsync(ids[1]));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_unique_keys"));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task A_duplicate_unique_key_returns_the_existing_job_within_one_call_and_across_calls()
    {
        var first = await InsertAsync(Unique("test/a"), Unique("test/b"), Unique("test/a"));
        Assert.Equal(first[0], first[2]);
        Assert.NotEqual(first[0], first[1]);
        var again = await InsertAsync(Unique("test/a"));
        Assert.Equal(first[0], again[0]);
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Equal("test/a", (await Storage.JobGetAsync(first[0], default))!.UniqueKey);
    }

    [Fact]
    public async Task A_unique_key_is_held_while_scheduled_or_running_and_freed_when_the_job_ends()
    {
        var scheduled = (await InsertAsync(Unique("test/s", T0.AddHours(1))))[0];
        Assert.Equal(scheduled, (await InsertAsync(Unique("test/s")))[0]);

        var running = (await InsertAsync(Unique("test/r")))[0];
        var process = await RegisterAsync();
        var claim = Assert.Single(await ClaimAsync(process));
        Assert.Equal(running, (await InsertAsync(Unique("test/r")))[0]);
        await CompleteAsync(process, claim);
        var next = (await InsertAsync(Unique("test/r")))[0];
        Assert.NotEqual(running, next);

        var failing = Assert.Single(await ClaimAsync(process));
        await Storage.JobFailAsync(new JobFailParams(process, failing.Ref, new FailureRecord("E", "m", null), null, T0), default);
        Assert.NotEqual(next, (await InsertAsync(Unique("test/r")))[0]);
    }

    [Fact]
    public async Task Concurrent_inserts_of_one_unique_key_create_one_job()
    {
        var ids = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => InsertAsync(Unique("test/race")))));
        Assert.Single(ids.Select(i => i[0]).Distinct());
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
    }

    [Fact]
    public async Task A_full_limit_blocks_and_each_release_promotes_the_next_blocked_job()
    {
        var ids = await InsertAsync(Limited(priority: 0), Limited(priority: 0), Limited(priority: 5), Limited(priority: 1), Limited(priority: 1));
        Assert.Equal([JobState.Ready, JobState.Ready, JobState.Blocked, JobState.Blocked, JobState.Blocked], await StatesAsync(ids));
        Assert.Equal("k/1", (await Storage.JobGetAsync(ids[0], default))!.ConcurrencyKey);

        var process = await RegisterAsync();
        var claims = await ClaimAsync(process);
        Assert.Equal(2, claims.Count);
        await CompleteAsync(process, claims[0]);
        Assert.Equal(JobState.Ready, await StateAsync(ids[3])); // priority 1 before priority 5, then id
        await Storage.JobFailAsync(new JobFailParams(process, claims[1].Ref, new FailureRecord("E", "m", null), null, T0), default);
        Assert.Equal(JobState.Ready, await StateAsync(ids[4]));
        Assert.Equal(JobState.Blocked, await StateAsync(ids[2]));

        // A late, rejected completion must not create a permit.
        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claims[0].Ref], T0, true), default));
        Assert.Equal(JobState.Blocked, await StateAsync(ids[2]));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task A_holder_whose_worker_is_lost_and_retried_keeps_its_permit()
    {
        var ids = await InsertAsync(Limited(limit: 1), Limited(limit: 1));
        var dead = await RegisterAsync();
        Assert.Single(await ClaimAsync(dead));
        await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("process-exited", "killed"), T0), default);
        Assert.Equal([JobState.Ready, JobState.Blocked], await StatesAsync(ids));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task A_holder_that_fails_with_a_retry_gives_its_permit_back_and_takes_one_again_when_due()
    {
        var ids = await InsertAsync(Limited(limit: 1), Limited(limit: 1));
        var process = await RegisterAsync();
        var claim = Assert.Single(await ClaimAsync(process));
        await Storage.JobFailAsync(new JobFailParams(process, claim.Ref, new FailureRecord("E", "m", null), T0.AddSeconds(10), T0), default);
        Assert.Equal([JobState.Scheduled, JobState.Ready], await StatesAsync(ids));
        await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(10, T0.AddSeconds(20)), default);
        Assert.Equal([JobState.Blocked, JobState.Ready], await StatesAsync(ids));
    }

    [Fact]
    public async Task Discard_on_conflict_discards_the_job_instead_of_blocking_it()
    {
        var ids = await InsertAsync(Limited(limit: 1, discard: true), Limited(limit: 1, discard: true));
        Assert.Equal([JobState.Ready, JobState.Discarded], await StatesAsync(ids));
        Assert.NotNull((await Storage.JobGetAsync(ids[1], default))!.DiscardedAt);
    }

    [Fact]
    public async Task A_scheduled_limited_job_takes_its_permit_when_due()
    {
        var ids = await InsertAsync(Limited(limit: 1, at: T0.AddSeconds(5)), Limited(limit: 1));
        Assert.Equal([JobState.Scheduled, JobState.Ready], await StatesAsync(ids));
        await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(10, T0.AddSeconds(6)), default);
        Assert.Equal(JobState.Blocked, await StateAsync(ids[0]));
    }

    [Fact]
    public async Task Maintenance_promotes_blocked_jobs_whose_key_has_a_free_permit_before_anything_expires()
    {
        var ids = await InsertAsync(Limited(limit: 1), Limited(limit: 1));
        var worker = await RegisterAsync();
        var claim = Assert.Single(await ClaimAsync(worker));
        // The release committed (the job finished, its permit is free), but the promotion after the commit was lost
        // with its connection: the next job stays blocked although nothing holds the permit.
        await Db.ExecuteAsync($"DELETE FROM keel_claimed_executions WHERE job_id = {claim.JobId}");
        await Db.ExecuteAsync($"UPDATE keel_jobs SET finished_at = {Db.TimeLiteral(T0)} WHERE id = {claim.JobId}");
        await Db.ExecuteAsync("UPDATE keel_semaphores SET value = 1");
        Assert.Equal(JobState.Blocked, await StateAsync(ids[1]));

        // Long before the blocked job's or the permit's expiry, maintenance sees the free permit and promotes.
        Assert.Equal(1, await Storage.ConcurrencyMaintainAsync(new ConcurrencyMaintainParams(100, T0.AddSeconds(1)), default));
        Assert.Equal(JobState.Ready, await StateAsync(ids[1]));
        Assert.Equal(0, await Storage.ConcurrencyMaintainAsync(new ConcurrencyMaintainParams(100, T0.AddSeconds(1)), default));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task Maintenance_recomputes_expired_permits_from_the_real_holders()
    {
        var ids = await InsertAsync(Limited(limit: 1), Limited(limit: 1));
        // A lost release: the permit count says full but nobody holds it any more.
        await Db.ExecuteAsync($"DELETE FROM keel_ready_executions WHERE job_id = {ids[0]}");
        await Db.ExecuteAsync($"UPDATE keel_jobs SET finished_at = {Db.TimeLiteral(T0)} WHERE id = {ids[0]}");
        await Db.ExecuteAsync($"UPDATE keel_semaphores SET value = 0, expires_at = {Db.TimeLiteral(T0.AddMinutes(-1))}");
        Assert.Equal(1, await Storage.ConcurrencyMaintainAsync(new ConcurrencyMaintainParams(100, T0), default));
        Assert.Equal(JobState.Ready, await StateAsync(ids[1]));

        // A holder still ready: an expired permit is renewed, nobody is promoted past the limit.
        var more = await InsertAsync(Limited(limit: 1));
        await Db.ExecuteAsync($"UPDATE keel_semaphores SET value = 1, expires_at = {Db.TimeLiteral(T0.AddMinutes(-1))}");
        Assert.Equal(0, await Storage.ConcurrencyMaintainAsync(new ConcurrencyMaintainParams(100, T0), default));
        Assert.Equal(JobState.Blocked, await StateAsync(more[0]));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task Enqueues_racing_releases_never_strand_a_blocked_job_nor_exceed_the_limit()
    {
        const int jobs = 60;
        var process = await RegisterAsync();
        var enqueued = 0;
        var finished = 0;
        var maxActive = 0L;
        var producer = Task.Run(async () =>
        {
            for (var i = 0; i < jobs; i++)
            {
                await Storage.JobsInsertAsync(new JobsInsertParams([Limited(key: "k/race", limit: 1)], null), default);
                Interlocked.Increment(ref enqueued);
            }
        });
        var consumer = Task.Run(async () =>
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Volatile.Read(ref finished) < jobs && DateTime.UtcNow < deadline)
            {
                maxActive = Math.Max(maxActive, await Db.ScalarAsync("SELECT (SELECT count(*) FROM keel_ready_executions) + (SELECT count(*) FROM keel_claimed_executions)"));
                var claimed = await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, 5, null), default);
                foreach (var claim in claimed)
                {
                    await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claim.Ref], null, true), default);
                    Interlocked.Increment(ref finished);
                }
            }
        });
        await Task.WhenAll(producer, consumer);
        Assert.Equal(jobs, finished);
        Assert.True(maxActive <= 1, $"{maxActive} jobs of a limit-1 key were ready or running at once");
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_blocked_executions"));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task Failed_jobs_are_retried_by_id_or_by_filter_with_their_attempts_reset()
    {
        var ids = await InsertAsync(
            new NewJob("a", "q1", "{}", 0, 1, null), new NewJob("a", "q1", "{}", 0, 1, null), new NewJob("b", "q2", "{}", 0, 1, null));
        var process = await RegisterAsync();
        foreach (var claim in await ClaimAsync(process))
        {
            var type = claim.Kind == "b" ? "System.TimeoutException" : "System.InvalidOperationException";
            await Storage.JobFailAsync(new JobFailParams(process, claim.Ref, new FailureRecord(type, "m", null), null, T0), default);
        }

        Assert.Equal(1, await Storage.JobsRetryAsync(new JobsSelectionParams(null, new JobFilter(ExceptionType: "System.TimeoutException"), null, 100, T0), default));
        var retried = (await Storage.JobGetAsync(ids[2], default))!;
        Assert.Equal((JobState.Ready, 0), (retried.State, retried.Attempts));
        Assert.Single(retried.Errors);
        Assert.Equal(1, await Storage.JobsRetryAsync(new JobsSelectionParams([ids[0]], null, null, 100, T0), default));
        Assert.Equal(0, await Storage.JobsRetryAsync(new JobsSelectionParams(null, new JobFilter(Queue: "q2"), null, 100, T0), default));
        Assert.Equal(1, await Storage.JobsRetryAsync(new JobsSelectionParams(null, new JobFilter(Kind: "a", FailedBefore: T0.AddSeconds(1)), null, 100, T0), default));
        Assert.Equal([JobState.Ready, JobState.Ready, JobState.Ready], await StatesAsync(ids));
    }

    [Fact]
    public async Task Discard_takes_ready_scheduled_blocked_and_failed_jobs_but_never_running_ones()
    {
        var ids = await InsertAsync(Limited(limit: 1), Limited(limit: 1), new NewJob("test", "default", "{}", 0, 3, T0.AddHours(1)), new NewJob("test", "other", "{}", 0, 3, null));
        var process = await RegisterAsync();
        var running = (await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.Parse("other"), 1, T0), default))[0];
        Assert.Equal(0, await Storage.JobsDiscardAsync(new JobsSelectionParams([running.JobId], null, null, 10, T0), default));
        Assert.Equal(JobState.Claimed, await StateAsync(running.JobId));

        // Discarding the ready holder frees its permit for the blocked one.
        Assert.Equal(1, await Storage.JobsDiscardAsync(new JobsSelectionParams([ids[0]], null, null, 10, T0), default));
        Assert.Equal([JobState.Discarded, JobState.Ready], await StatesAsync(ids.Take(2)));
        Assert.Equal(2, await Storage.JobsDiscardAsync(new JobsSelectionParams(null, new JobFilter(Queue: "default"), [JobState.Ready, JobState.Scheduled], 10, T0), default));
        Assert.Equal([JobState.Discarded, JobState.Discarded, JobState.Discarded, JobState.Claimed], await StatesAsync(ids));
    }

    [Fact]
    public async Task Run_now_makes_a_scheduled_job_due_and_a_blocked_job_ready_past_its_limit()
    {
        var ids = await InsertAsync(new NewJob("test", "default", "{}", 0, 3, T0.AddDays(1)), Limited(limit: 1), Limited(limit: 1));
        Assert.True(await Storage.JobRunNowAsync(new JobRunNowParams(ids[0], T0), default));
        Assert.True(await Storage.JobRunNowAsync(new JobRunNowParams(ids[2], T0), default));
        Assert.Equal([JobState.Ready, JobState.Ready, JobState.Ready], await StatesAsync(ids));
        Assert.False(await Storage.JobRunNowAsync(new JobRunNowParams(ids[0], T0), default));
        await AssertPermitsWithinLimitAsync();
    }

    [Fact]
    public async Task Queues_are_listed_with_counts_and_pause_and_resume()
    {
        await InsertAsync(new NewJob("t", "alpha", "{}", 0, 3, null), new NewJob("t", "alpha", "{}", 0, 3, null), new NewJob("t", "beta", "{}", 0, 3, T0.AddHours(1)));
        await Storage.QueuePauseAsync(new QueuePauseParams("gamma", true, T0), default);
        await Storage.QueuePauseAsync(new QueuePauseParams("alpha", true, T0), default);
        await Storage.QueuePauseAsync(new QueuePauseParams("alpha", true, T0), default);
        var queues = await Storage.QueuesListAsync(T0.AddMinutes(2), default);
        Assert.Equal(["alpha", "beta", "gamma"], queues.Select(q => q.Name));
        Assert.Equal((2L, 0L, true), (queues[0].Ready, queues[0].Scheduled, queues[0].Paused));
        Assert.Equal(TimeSpan.FromMinutes(2), queues[0].OldestReadyAge);
        Assert.Equal((0L, 1L, false, (TimeSpan?)null), (queues[1].Ready, queues[1].Scheduled, queues[1].Paused, queues[1].OldestReadyAge));
        await Storage.QueuePauseAsync(new QueuePauseParams("alpha", false, T0), default);
        Assert.False((await Storage.QueuesListAsync(T0, default))[0].Paused);
    }

    [Fact]
    public async Task A_queue_whose_jobs_are_all_done_is_still_listed_so_it_can_be_paused_in_advance()
    {
        var ids = await InsertAsync(new NewJob("t", "idle-b", "{}", 0, 3, null), new NewJob("t", "idle-a", "{}", 0, 3, null), new NewJob("t", "idle-a", "{}", 0, 3, null), new NewJob("t", "busy", "{}", 0, 3, null));
        Assert.Equal(3, await Storage.JobsDiscardAsync(new JobsSelectionParams([ids[0], ids[1], ids[2]], null, null, 100, T0), default));
        var queues = await Storage.QueuesListAsync(T0, default);
        Assert.Equal(["busy", "idle-a", "idle-b"], queues.Select(q => q.Name));
        Assert.Equal(new QueueInfo("idle-a", 0, 0, 0, 0, 0, null, false), queues[1]);
        Assert.Equal(1, queues[0].Ready);
    }

    [Fact]
    public async Task Jobs_are_listed_newest_first_by_state_and_filter_a_page_at_a_time()
    {
        var ids = await InsertAsync(
            new NewJob("a", "q1", "{}", 0, 1, null), new NewJob("a", "q1", "{}", 0, 1, null), new NewJob("b", "q2", "{}", 0, 1, T0.AddHours(1)),
            new NewJob("b", "q2", "{}", 0, 1, null), new NewJob("a", "q2", "{}", 0, 1, null));
        var process = await RegisterAsync();
        var claimed = await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.Parse("q1"), 2, T0), default);
        await Storage.JobFailAsync(new JobFailParams(process, claimed[0].Ref, new FailureRecord("System.TimeoutException", "slow", null), null, T0), default);

        var all = await Storage.JobsListAsync(new JobsListParams(null, null, null, null, null, 10), default);
        Assert.Equal(ids.Reverse(), all.Select(j => j.Id));
        Assert.Equal([JobState.Ready, JobState.Ready, JobState.Scheduled, JobState.Claimed, JobState.Failed], all.Select(j => j.State));
        var failed = Assert.Single(await Storage.JobsListAsync(new JobsListParams(JobState.Failed, null, null, null, null, 10), default));
        Assert.Equal(("System.TimeoutException", "slow"), (failed.ErrorType, failed.ErrorMessage));
        Assert.Equal(process, Assert.Single(await Storage.JobsListAsync(new JobsListParams(JobState.Claimed, null, null, null, null, 10), default)).ProcessId);
        Assert.Equal(T0.AddHours(1), Assert.Single(await Storage.JobsListAsync(new JobsListParams(JobState.Scheduled, null, null, null, null, 10), default)).ScheduledAt);
        Assert.Equal([ids[4], ids[3]], (await Storage.JobsListAsync(new JobsListParams(JobState.Ready, new JobFilter(Queue: "q2"), null, null, null, 10), default)).Select(j => j.Id));
        Assert.Equal([ids[4], ids[1]], (await Storage.JobsListAsync(new JobsListParams(null, new JobFilter(Kind: "a"), null, null, null, 2), default)).Select(j => j.Id));
        Assert.Equal([ids[0]], (await Storage.JobsListAsync(new JobsListParams(null, new JobFilter(Kind: "a"), null, null, ids[1], 2), default)).Select(j => j.Id));
        Assert.Empty(await Storage.JobsListAsync(new JobsListParams(null, null, T0.AddSeconds(-1), null, null, 10), default));
    }

    [Fact]
    public async Task Retention_deletes_finished_and_discarded_jobs_older_than_the_cutoff_in_batches()
    {
        var ids = await InsertAsync(new NewJob("t", "q", "{}", 0, 3, null), new NewJob("t", "q", "{}", 0, 3, null), new NewJob("t", "q", "{}", 0, 3, null), new NewJob("t", "q", "{}", 0, 3, null));
        var process = await RegisterAsync();
        var claims = await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, 2, T0), default);
        await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [.. claims.Select(c => c.Ref)], T0, true), default);
        await Storage.JobsDiscardAsync(new JobsSelectionParams([ids[2]], null, null, 10, T0.AddDays(2)), default);

        Assert.Equal(1, await Storage.JobsClearFinishedAsync(new JobsClearFinishedParams(TimeSpan.FromDays(1), 1, T0.AddDays(1.5)), default));
        Assert.Equal(1, await Storage.JobsClearFinishedAsync(new JobsClearFinishedParams(TimeSpan.FromDays(1), 10, T0.AddDays(1.5)), default));
        Assert.Equal(0, await Storage.JobsClearFinishedAsync(new JobsClearFinishedParams(TimeSpan.FromDays(1), 10, T0.AddDays(1.5)), default));
        Assert.Equal(1, await Storage.JobsClearFinishedAsync(new JobsClearFinishedParams(TimeSpan.FromDays(1), 10, T0.AddDays(3.5)), default));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Equal(JobState.Ready, await StateAsync(ids[3]));
    }
#pragma warning restore CS1591
}

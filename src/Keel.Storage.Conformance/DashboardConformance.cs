using Keel.Storage;

namespace Keel.Storage.Conformance;

/// <summary>The storage reads behind the dashboard, on every engine: capped counts, per-minute activity, state lists.</summary>
public abstract class DashboardConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);


    private async Task<long> RegisterAsync()
        => await Storage.ProcessRegisterAsync(new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 1234, "test-host", T0, null, "{}", T0), default);

    private async Task<IReadOnlyList<ClaimedJob>> ClaimedAsync(long process, string queue, int count, DateTimeOffset insertedAt, DateTimeOffset claimedAt)
    {
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(_ => new NewJob("test", queue, "{}", 0, 3, null))], insertedAt), default);
        return await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.Parse(queue), count, claimedAt), default);
    }

    [Fact]
    public async Task Counts_per_state_stop_just_past_the_limit()
    {
        var process = await RegisterAsync();
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, 7).Select(_ => new NewJob("test", "ready", "{}", 0, 3, null))], T0), default);
        await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "later", "{}", 0, 3, T0.AddHours(1))], T0), default);
        var claims = await ClaimedAsync(process, "work", 3, T0, T0);
        await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claims[0].Ref], T0, true), default);
        await Storage.JobFailAsync(new JobFailParams(process, claims[1].Ref, new FailureRecord("System.TimeoutException", "slow", null), null, T0), default);

        var counts = await Storage.JobsCountAsync(new JobsCountParams(5), default);

        Assert.Equal(5, counts.Limit);
        Assert.Equal(6, counts.Of(JobState.Ready)); // 7 ready: counted up to the limit plus one
        Assert.True(counts.IsCapped(JobState.Ready));
        Assert.Equal((1L, 1L, 1L, 1L, 0L, 0L), (counts.Of(JobState.Scheduled), counts.Of(JobState.Claimed), counts.Of(JobState.Failed), counts.Of(JobState.Finished), counts.Of(JobState.Blocked), counts.Of(JobState.Discarded)));
        Assert.False(counts.IsCapped(JobState.Claimed));
    }

    [Fact]
    public async Task Activity_counts_finished_jobs_and_failed_attempts_per_minute_with_the_mean_queue_latency()
    {
        var process = await RegisterAsync();
        // Minute 1: three jobs wait 2 s, 4 s and 6 s (mean 4 s) and finish; minute 3: one attempt fails.
        foreach (var wait in new[] { 2, 4, 6 })
        {
            var claim = (await ClaimedAsync(process, "q", 1, T0.AddMinutes(1), T0.AddMinutes(1).AddSeconds(wait)))[0];
            await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claim.Ref], T0.AddMinutes(1).AddSeconds(30), true), default);
        }

        var failing = (await ClaimedAsync(process, "q", 1, T0.AddMinutes(3), T0.AddMinutes(3)))[0];
        await Storage.JobFailAsync(new JobFailParams(process, failing.Ref, new FailureRecord("System.TimeoutException", "slow", null), T0.AddHours(1), T0.AddMinutes(3).AddSeconds(10)), default);
        var outside = (await ClaimedAsync(process, "q", 1, T0.AddMinutes(-10), T0.AddMinutes(-10)))[0];
        await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [outside.Ref], T0.AddMinutes(-9), true), default);

        var buckets = await Storage.JobsActivityAsync(new JobsActivityParams(T0, TimeSpan.FromMinutes(1), 5), default);

        Assert.Equal([T0, T0.AddMinutes(1), T0.AddMinutes(2), T0.AddMinutes(3), T0.AddMinutes(4)], buckets.Select(b => b.Start));
        Assert.Equal([0L, 3L, 0L, 0L, 0L], buckets.Select(b => b.Finished));
        Assert.Equal([0L, 0L, 0L, 1L, 0L], buckets.Select(b => b.Failed));
        Assert.Equal(4.0, buckets[1].MeanLatency!.Value.TotalSeconds, 3);
        Assert.Null(buckets[0].MeanLatency);
    }

    [Fact]
    public async Task Every_state_reads_the_same_in_the_job_the_lists_and_the_counts()
    {
        var process = await RegisterAsync();
        var claimed = await ClaimedAsync(process, "a", 3, T0, T0);
        await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claimed[0].Ref], T0, PreserveFinishedJobs: true), default);
        await Storage.JobFailAsync(new JobFailParams(process, claimed[1].Ref, new FailureRecord("System.TimeoutException", "slow", null), null, T0), default);
        var limited = new NewJob("test", "b", "{}", 0, 3, null) { ConcurrencyKey = "k" };
        var later = await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "b", "{}", 0, 3, T0.AddHours(1)), limited, limited, new NewJob("test", "b", "{}", 0, 3, null)], T0), default);
        Assert.Equal(1, await Storage.JobsDiscardAsync(new JobsSelectionParams([later[3]], null, null, 10, T0), default));
        var awaiting = await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "c", "{}", 0, 3, null) { Dependencies = [new NewDependency(later[1], null, ContinueWhen.Succeeded, UnmetPolicy.Discard)] }], T0), default);
        var expected = new Dictionary<JobState, long>
        {
            [JobState.Finished] = claimed[0].JobId,
            [JobState.Failed] = claimed[1].JobId,
            [JobState.Claimed] = claimed[2].JobId,
            [JobState.Scheduled] = later[0],
            [JobState.Ready] = later[1],
            [JobState.Blocked] = later[2],
            [JobState.Discarded] = later[3],
            [JobState.Awaiting] = awaiting[0],
        };
        Assert.Equal(Enum.GetValues<JobState>().Order(), expected.Keys.Order());

        var all = await Storage.JobsListAsync(new JobsListParams(null, null, null, null, null, 100), default);
        var counts = await Storage.JobsCountAsync(new JobsCountParams(100), default);
        foreach (var (state, id) in expected)
        {
            Assert.Equal(state, (await Storage.JobGetAsync(id, default))!.State);
            Assert.Equal(state, Assert.Single(all, j => j.Id == id).State);
            var listed = Assert.Single(await Storage.JobsListAsync(new JobsListParams(state, null, null, null, null, 100), default));
            Assert.Equal((id, state), (listed.Id, listed.State));
            Assert.Equal(1, counts.Counts[state]);
        }
    }

    [Fact]
    public async Task A_state_list_walks_newest_first_by_id_with_filters()
    {
        var process = await RegisterAsync();
        var ready = await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, 5).Select(i => new NewJob(i % 2 == 0 ? "even" : "odd", "a", "{}", 0, 3, null))], T0), default);
        var failed = await ClaimedAsync(process, "b", 2, T0, T0);
        await Storage.JobFailAsync(new JobFailParams(process, failed[0].Ref, new FailureRecord("System.TimeoutException", "slow", "at X"), null, T0.AddMinutes(1)), default);
        await Storage.JobFailAsync(new JobFailParams(process, failed[1].Ref, new FailureRecord("System.IO.IOException", "disk", null), null, T0.AddMinutes(2)), default);

        var firstPage = await Storage.JobsListAsync(new JobsListParams(JobState.Ready, null, null, null, null, 2), default);
        Assert.Equal([ready[4], ready[3]], firstPage.Select(j => j.Id));
        var secondPage = await Storage.JobsListAsync(new JobsListParams(JobState.Ready, null, null, null, ready[3], 2), default);
        Assert.Equal([ready[2], ready[1]], secondPage.Select(j => j.Id));
        Assert.Equal([ready[4], ready[2], ready[0]], (await Storage.JobsListAsync(new JobsListParams(JobState.Ready, new JobFilter(Kind: "even"), null, null, null, 10), default)).Select(j => j.Id));
        Assert.All(firstPage, j => Assert.Equal(JobState.Ready, j.State));
        Assert.Equal(ready.Reverse(), (await Storage.JobsListAsync(new JobsListParams(JobState.Ready, new JobFilter(Queue: "a"), null, null, null, 10), default)).Select(j => j.Id));
        Assert.Empty(await Storage.JobsListAsync(new JobsListParams(JobState.Ready, new JobFilter(Queue: "b"), null, null, null, 10), default));
        Assert.Equal([failed[1].JobId, failed[0].JobId], (await Storage.JobsListAsync(new JobsListParams(JobState.Failed, new JobFilter(Queue: "b"), null, null, null, 10), default)).Select(j => j.Id));
        Assert.Equal(2, Assert.Single(await Storage.QueuesListAsync(null, default), q => q.Name == "b").Failed);

        var timeouts = await Storage.JobsListAsync(new JobsListParams(JobState.Failed, new JobFilter(ExceptionType: "System.TimeoutException"), null, null, null, 10), default);
        Assert.Equal((failed[0].JobId, "System.TimeoutException", "slow"), (Assert.Single(timeouts).Id, timeouts[0].ErrorType, timeouts[0].ErrorMessage));
        var recent = await Storage.JobsListAsync(new JobsListParams(JobState.Failed, new JobFilter(FailedAfter: T0.AddMinutes(1.5)), null, null, null, 10), default);
        Assert.Equal([failed[1].JobId], recent.Select(j => j.Id));
        Assert.Empty(await Storage.JobsListAsync(new JobsListParams(JobState.Ready, new JobFilter(ExceptionType: "System.TimeoutException"), null, null, null, 10), default));
    }
#pragma warning restore CS1591
}

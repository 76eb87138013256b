using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Testing.Tests;

public sealed class KeelTestHostTests
{
    private readonly Ledger _ledger = new();

    private Task<KeelTestHost> StartAsync(Action<IKeelBuilder>? configure = null, KeelTestOptions? options = null)
        => KeelTestHost.StartAsync(
            k =>
            {
                k.AddJob<CountJob>().AddJob<FlakyJob>().AddJob<ChainJob>();
                configure?.Invoke(k);
            },
            services => services.AddSingleton(_ledger),
            options);

    [Fact]
    public async Task Enqueued_job_waits_until_the_drain_runs_it()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<CountJob, WorkArgs>(new("a"));

        await keel.AssertEnqueuedAsync<CountJob, WorkArgs>(a => a.Key == "a");
        Assert.Equal(0, _ledger.Count("a"));

        var drain = await keel.RunUntilIdleAsync();

        Assert.Equal(1, drain.Succeeded);
        Assert.Equal(1, _ledger.Count("a"));
        await keel.AssertPerformedAsync<CountJob, WorkArgs>(a => a.Key == "a");
        await keel.AssertNothingEnqueuedAsync<CountJob>();
    }

    [Fact]
    public async Task Assertion_failure_names_the_kind_and_lists_its_jobs()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<CountJob, WorkArgs>(new("a"));

        var error = await Assert.ThrowsAsync<KeelAssertionException>(() => keel.AssertEnqueuedAsync<CountJob, WorkArgs>(a => a.Key == "b"));

        Assert.Contains("test.count", error.Message, StringComparison.Ordinal);
        Assert.Contains("\"a\"", error.Message, StringComparison.OrdinalIgnoreCase);
        await Assert.ThrowsAsync<KeelAssertionException>(() => keel.AssertPerformedAsync<CountJob, WorkArgs>());
    }

    [Fact]
    public async Task Scheduled_job_runs_only_when_the_drain_may_move_the_clock_to_it()
    {
        await using var keel = await StartAsync();
        var start = keel.Time.GetUtcNow();
        await keel.Client.ScheduleAsync<CountJob, WorkArgs>(new("later"), TimeSpan.FromHours(3));

        var now = await keel.RunUntilIdleAsync();
        Assert.Empty(now.Runs);
        Assert.Equal(start, keel.Time.GetUtcNow());
        await keel.AssertEnqueuedAsync<CountJob, WorkArgs>();

        var later = await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true });

        Assert.Equal(1, later.Succeeded);
        Assert.Equal(start + TimeSpan.FromHours(3), keel.Time.GetUtcNow());
        await keel.AssertPerformedAsync<CountJob, WorkArgs>(a => a.Key == "later");
    }

    [Fact]
    public async Task Retries_are_drained_through_their_backoff_with_the_fake_clock()
    {
        await using var keel = await StartAsync();
        var start = keel.Time.GetUtcNow();
        await keel.Client.EnqueueAsync<FlakyJob, FlakyArgs>(new("flaky", Failures: 2));

        var first = await keel.RunUntilIdleAsync();
        Assert.Equal(1, first.Failed);
        Assert.True(first.Runs[0].Retrying);
        var waiting = await keel.AssertEnqueuedAsync<FlakyJob, FlakyArgs>();
        Assert.Equal(JobState.Scheduled, waiting.State);

        var rest = await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true });

        Assert.Equal([KeelTestRunResult.Failed, KeelTestRunResult.Succeeded], rest.Runs.Select(r => r.Result));
        Assert.Equal([2, 3], rest.Runs.Select(r => r.Attempt));
        var job = await keel.AssertPerformedAsync<FlakyJob, FlakyArgs>();
        Assert.Equal(2, job.Errors.Count);
        // Backoff: 15 s then 30 s, each ±20 %: the clock went at least 36 s forward, and no further than needed.
        var moved = keel.Time.GetUtcNow() - start;
        Assert.InRange(moved, TimeSpan.FromSeconds(36), TimeSpan.FromSeconds(54));
    }

    [Fact]
    public async Task A_job_that_keeps_failing_fails_for_good_after_its_attempts()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<FlakyJob, FlakyArgs>(new("doomed", Failures: 100));

        var drain = await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true });

        Assert.Equal(3, drain.Failed);
        Assert.False(drain.Runs[^1].Retrying);
        var job = await keel.AssertFailedAsync<FlakyJob, FlakyArgs>(a => a.Key == "doomed");
        Assert.Equal(3, job.Errors.Count);
        Assert.Equal(typeof(InvalidOperationException).FullName, job.Errors[^1].ExceptionType);
    }

    [Fact]
    public async Task Recurring_ticks_are_followed_up_to_the_given_time()
    {
        await using var keel = await StartAsync(k => k.AddRecurring<CountJob, WorkArgs>("tick", "*/5 * * * *", new WorkArgs("tick")));
        var start = keel.Time.GetUtcNow();

        await Assert.ThrowsAsync<KeelAssertionException>(() => keel.AssertRecurringDueAsync("tick"));
        keel.Time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(start + TimeSpan.FromMinutes(5), await keel.AssertRecurringDueAsync("tick"));

        var drain = await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true, Until = start + TimeSpan.FromMinutes(22) });

        Assert.Equal(4, drain.Succeeded); // 5, 10, 15 and 20 minutes past
        Assert.Equal(4, _ledger.Count("tick"));
        Assert.Equal(start + TimeSpan.FromMinutes(22), keel.Time.GetUtcNow());
        await Assert.ThrowsAsync<KeelAssertionException>(() => keel.AssertRecurringDueAsync("tick"));
    }

    [Fact]
    public async Task Without_a_limit_the_drain_does_not_follow_recurring_ticks_forever()
    {
        await using var keel = await StartAsync(k => k.AddRecurring<CountJob, WorkArgs>("tick", "* * * * *", new WorkArgs("tick")));
        var start = keel.Time.GetUtcNow();

        var drain = await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true });

        Assert.Empty(drain.Runs);
        Assert.Equal(start, keel.Time.GetUtcNow());
    }

    [Fact]
    public async Task Inline_mode_runs_the_job_and_what_it_enqueues_before_enqueue_returns()
    {
        await using var keel = await StartAsync(options: new KeelTestOptions { Inline = true });

        await keel.Client.EnqueueAsync<ChainJob, WorkArgs>(new("inline"));

        Assert.Equal(1, _ledger.Count("chain:inline"));
        Assert.Equal(1, _ledger.Count("inline"));
        await keel.AssertPerformedAsync<ChainJob, WorkArgs>();
        await keel.AssertPerformedAsync<CountJob, WorkArgs>(a => a.Key == "inline");
        // The client your services get is the inline one too.
        await keel.Services.GetRequiredService<IKeelClient>().EnqueueAsync<CountJob, WorkArgs>(new("service"));
        Assert.Equal(1, _ledger.Count("service"));
    }

    [Fact]
    public async Task Inline_mode_leaves_a_scheduled_job_for_its_time()
    {
        await using var keel = await StartAsync(options: new KeelTestOptions { Inline = true });

        await keel.Client.ScheduleAsync<CountJob, WorkArgs>(new("later"), TimeSpan.FromMinutes(1));

        Assert.Equal(0, _ledger.Count("later"));
        await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true });
        Assert.Equal(1, _ledger.Count("later"));
    }

    [Fact]
    public async Task A_job_that_enqueues_itself_forever_stops_the_drain_with_an_error()
    {
        await using var keel = await StartAsync();
        for (var i = 0; i < 6; i++)
        {
            await keel.Client.EnqueueAsync<CountJob, WorkArgs>(new("many"));
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => keel.RunUntilIdleAsync(new DrainOptions { MaxRuns = 5 }));

        Assert.Contains("MaxRuns", error.Message, StringComparison.Ordinal);
        Assert.Equal(5, _ledger.Count("many"));
        await keel.AssertEnqueuedAsync<CountJob, WorkArgs>(); // the sixth went back to ready
    }

    [Fact]
    public async Task Disposing_deletes_the_database()
    {
        var keel = await StartAsync();
        var path = keel.DatabasePath;
        Assert.True(File.Exists(path));

        await keel.DisposeAsync();

        Assert.False(File.Exists(path));
    }
}

public sealed class KeelTestHostSetupTests
{
    [Fact]
    public async Task Services_that_add_Keel_themselves_are_refused_so_no_other_database_is_used()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => KeelTestHost.StartAsync(
            k => k.AddJob<CountJob>(),
            services => Keel.Hosting.KeelServiceCollectionExtensions.AddKeel(services, k => k.AddJob<CountJob>())));

        Assert.Contains("configure callback", error.Message, StringComparison.Ordinal);
    }
}

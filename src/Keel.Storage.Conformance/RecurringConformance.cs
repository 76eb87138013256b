using Keel.Registry;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keel.Storage.Conformance;

/// <summary>Recurring tasks on every engine: the storage seam and the scheduler, driven with fixed times.</summary>
public abstract class RecurringConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    // A Monday in winter (Paris is UTC+1).
    private static readonly DateTimeOffset T0 = new(2030, 1, 14, 12, 0, 0, TimeSpan.Zero);

    private JobRegistry Registry { get; } = NewRegistry();


    private static JobRegistry NewRegistry()
    {
        var registry = new JobRegistry();
        registry.Add(typeof(ConformanceJob), o =>
        {
            o.Queue = "counting";
            o.Priority = 7;
            o.MaxAttempts = 4;
        });
        return registry;
    }

    private static RecurringTask Task(string key, string schedule, RecurringCatchUp catchUp = RecurringCatchUp.Skip, int limit = 10, string? zone = null, bool isStatic = false, string? queue = null, int? priority = null, int? maxAttempts = null)
        => new(key, "count", "{\"n\":1}", schedule, zone, queue, priority, maxAttempts, catchUp, limit, isStatic, null);

    private static NewJob Job() => new("count", "default", "{}", 0, 3, null);

    private Scheduler NewScheduler(Action<KeelOptions>? configure = null)
    {
        var options = new KeelOptions();
        options.Scheduler.PollingInterval = TimeSpan.FromMilliseconds(100);
        configure?.Invoke(options);
        return new Scheduler(Storage, Registry, new JobSignal(), options, NullLogger.Instance, new KeelClock(TimeProvider.System));
    }

    private Task<bool> AddAsync(RecurringTask task) => Storage.RecurringTaskUpsertAsync(new RecurringTaskUpsertParams(task, T0), default);

    /// <summary>The recorded runs of a task, oldest first, with their job ids.</summary>
    private async Task<List<(DateTimeOffset RunAt, long? JobId)>> RunsAsync(string key)
    {
        await using var connection = await Db.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT run_at, job_id FROM keel_recurring_executions WHERE task_key = @key ORDER BY run_at";
        var p = command.CreateParameter();
        p.ParameterName = "key";
        p.Value = key;
        command.Parameters.Add(p);
        var runs = new List<(DateTimeOffset, long?)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            runs.Add((Db.ReadTime(reader, 0), reader.IsDBNull(1) ? null : reader.GetInt64(1)));
        }

        return runs;
    }

    private Task<long> JobCountAsync() => Db.ScalarAsync("SELECT count(*) FROM keel_jobs");

    [Fact]
    public async Task Sync_upserts_static_tasks_removes_unlisted_static_ones_and_keeps_dynamic_ones()
    {
        await AddAsync(Task("dynamic", "* * * * *"));
        await Storage.RecurringTasksSyncAsync(new RecurringTasksSyncParams([Task("a", "@hourly", isStatic: true), Task("b", "@daily", isStatic: true)], T0), default);
        var removed = await Storage.RecurringTasksSyncAsync(new RecurringTasksSyncParams([Task("a", "*/5 * * * *", RecurringCatchUp.All, 3, "Europe/Paris", queue: "q", priority: 2, maxAttempts: 5)], T0), default);

        Assert.Equal(1, removed);
        var tasks = await Storage.RecurringTasksListAsync(new RecurringTasksListParams(), default);
        Assert.Equal(["a", "dynamic"], tasks.Select(t => t.Task.Key));
        Assert.Equal(Task("a", "*/5 * * * *", RecurringCatchUp.All, 3, "Europe/Paris", isStatic: true, queue: "q", priority: 2, maxAttempts: 5), tasks[0].Task);
        Assert.False(tasks[1].Task.Static);

        // An empty configuration removes every static task, still leaving dynamic ones.
        Assert.Equal(1, await Storage.RecurringTasksSyncAsync(new RecurringTasksSyncParams([], T0), default));
        Assert.Equal(["dynamic"], (await Storage.RecurringTasksListAsync(new RecurringTasksListParams(), default)).Select(t => t.Task.Key));
    }

    [Fact]
    public async Task Dynamic_upsert_never_overwrites_a_static_task_and_delete_removes_only_dynamic_ones()
    {
        await Storage.RecurringTasksSyncAsync(new RecurringTasksSyncParams([Task("static", "@hourly", isStatic: true)], T0), default);
        Assert.False(await AddAsync(Task("static", "* * * * *")));
        Assert.False(await Storage.RecurringTaskDeleteAsync(new RecurringTaskDeleteParams("static"), default));
        Assert.True(await AddAsync(Task("dyn", "* * * * *")));
        Assert.True(await AddAsync(Task("dyn", "*/2 * * * *")));
        var tasks = await Storage.RecurringTasksListAsync(new RecurringTasksListParams(), default);
        Assert.Equal([("dyn", "*/2 * * * *"), ("static", "@hourly")], tasks.Select(t => (t.Task.Key, t.Task.Schedule)));
        Assert.True(await Storage.RecurringTaskDeleteAsync(new RecurringTaskDeleteParams("dyn"), default));
        Assert.False(await Storage.RecurringTaskDeleteAsync(new RecurringTaskDeleteParams("dyn"), default));
    }

    [Fact]
    public async Task A_run_enqueues_one_job_once_and_its_record_outlives_the_job()
    {
        var first = await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("t", T0, Job(), T0), default);
        var again = await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("t", T0, Job(), T0), default);
        Assert.NotNull(first);
        Assert.Null(again);
        Assert.Equal(JobState.Ready, (await Storage.JobGetAsync(first.Value, default))!.State);
        Assert.Equal([(T0, first)], await RunsAsync("t"));

        // Retention deletes the job: the run stays recorded, so it is still not enqueued twice.
        await Db.ExecuteAsync($"DELETE FROM keel_jobs WHERE id = {first.Value}");
        Assert.Null(await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("t", T0, Job(), T0), default));
        Assert.Equal(0, await JobCountAsync());

        await AddAsync(Task("t", "* * * * *"));
        var listed = Assert.Single(await Storage.RecurringTasksListAsync(new RecurringTasksListParams("t"), default));
        Assert.Equal(T0, listed.LastRunAt);
    }

    [Fact]
    public async Task A_run_in_the_future_goes_to_scheduled_through_the_one_insert_path()
    {
        var id = await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("t", T0, Job() with { ScheduledAt = T0.AddMinutes(1) }, T0), default);
        Assert.Equal(JobState.Scheduled, (await Storage.JobGetAsync(id!.Value, default))!.State);
    }

    [Fact]
    public async Task Concurrent_enqueues_of_one_run_insert_exactly_one_job()
    {
        var results = await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 8).Select(_ => System.Threading.Tasks.Task.Run(() => Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("t", T0, Job(), null), default))));
        Assert.Single(results, r => r is not null);
        Assert.Equal(1, await JobCountAsync());
    }

    [Fact]
    public async Task Three_schedulers_racing_on_the_same_ticks_enqueue_exactly_one_job_per_tick()
    {
        await AddAsync(Task("every-minute", "* * * * *"));
        var schedulers = Enumerable.Range(0, 3).Select(_ => NewScheduler()).ToList();
        foreach (var scheduler in schedulers)
        {
            await scheduler.RunOnceAsync(T0, default);
        }

        var enqueued = 0;
        for (var minute = 1; minute <= 5; minute++)
        {
            var at = T0.AddMinutes(minute).AddMilliseconds(5);
            var passes = await System.Threading.Tasks.Task.WhenAll(schedulers.Select(s => System.Threading.Tasks.Task.Run(() => s.RunOnceAsync(at, default))));
            Assert.Equal(1, passes.Sum(p => p.Enqueued));
            enqueued += passes.Sum(p => p.Enqueued);
        }

        var runs = await RunsAsync("every-minute");
        Assert.Equal(Enumerable.Range(1, 5).Select(m => T0.AddMinutes(m)), runs.Select(r => r.RunAt));
        Assert.Equal(5, runs.Select(r => r.JobId).Distinct().Count());
        Assert.Equal(5, await JobCountAsync());
        Assert.Equal(5, enqueued);
    }

    [Fact]
    public async Task Three_schedulers_running_in_real_time_enqueue_every_second_exactly_once()
    {
        await AddAsync(Task("every-second", "*/1 * * * * *"));
        using var stop = new CancellationTokenSource();
        var schedulers = Enumerable.Range(0, 3).Select(_ => NewScheduler(o => o.HeartbeatInterval = TimeSpan.FromSeconds(1))).ToList();
        var started = DateTimeOffset.UtcNow;
        var loops = schedulers.Select(s => System.Threading.Tasks.Task.Run(() => s.RunAsync(stop.Token))).ToList();
        await System.Threading.Tasks.Task.Delay(TimeSpan.FromSeconds(3.2));
        await stop.CancelAsync();
        await System.Threading.Tasks.Task.WhenAll(loops);
        var stopped = DateTimeOffset.UtcNow;

        var runs = await RunsAsync("every-second");
        Assert.True(runs.Count >= 2, $"only {runs.Count} ticks were enqueued in 3 s");
        Assert.All(runs, r => Assert.True(r.RunAt > started && r.RunAt < stopped && r.RunAt.Millisecond == 0, $"unexpected run {r.RunAt:O}"));
        for (var i = 1; i < runs.Count; i++)
        {
            Assert.Equal(TimeSpan.FromSeconds(1), runs[i].RunAt - runs[i - 1].RunAt); // No tick in the window was missed.
        }

        Assert.Equal(runs.Count, runs.Select(r => r.JobId).Distinct().Count());
        Assert.Equal(runs.Count, await JobCountAsync()); // No run has two jobs.
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes")); // Each deregistered.
    }

    [Fact]
    public async Task The_next_run_follows_the_previous_run_not_the_wall_clock()
    {
        await AddAsync(Task("minutely", "* * * * *"));
        var scheduler = NewScheduler();
        await scheduler.RunOnceAsync(T0.AddSeconds(-30), default);

        // Woken a hair early: nothing is due, and the tick is not skipped or doubled afterwards.
        Assert.Equal(0, (await scheduler.RunOnceAsync(T0.AddMilliseconds(-1), default)).Enqueued);
        var pass = await scheduler.RunOnceAsync(T0.AddMilliseconds(1), default);
        Assert.Equal((1, (DateTimeOffset?)T0.AddMinutes(1)), (pass.Enqueued, pass.NextRunAt));
        Assert.Equal(0, (await scheduler.RunOnceAsync(T0.AddMilliseconds(2), default)).Enqueued);

        // A restart across the next tick: the new scheduler resumes from the last recorded run (T0), so the tick
        // at T0+1min that fell inside the restart is enqueued even though "now" is past it.
        var restarted = NewScheduler();
        Assert.Equal(1, (await restarted.RunOnceAsync(T0.AddMinutes(1).AddSeconds(20), default)).Enqueued);
        Assert.Equal([T0, T0.AddMinutes(1)], (await RunsAsync("minutely")).Select(r => r.RunAt));
    }

    [Fact]
    public async Task A_task_that_never_ran_starts_from_now()
    {
        await AddAsync(Task("hourly", "@hourly", RecurringCatchUp.All));
        var scheduler = NewScheduler();
        var pass = await scheduler.RunOnceAsync(T0.AddMinutes(30), default);
        Assert.Equal((0, (DateTimeOffset?)T0.AddHours(1)), (pass.Enqueued, pass.NextRunAt));
    }

    [Theory]
    [InlineData(RecurringCatchUp.Skip, 0)]
    [InlineData(RecurringCatchUp.Once, 1)]
    [InlineData(RecurringCatchUp.All, 3)]
    public async Task Ticks_missed_while_no_scheduler_ran_follow_the_catch_up_policy(RecurringCatchUp policy, int expected)
    {
        // Ran at T0, then no scheduler for 10 hours (ticks T0+1h … T0+10h missed), limit 3.
        await AddAsync(Task("hourly", "0 * * * *", policy, limit: 3));
        Assert.NotNull(await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("hourly", T0, Job(), T0), default));

        var now = T0.AddHours(10).AddMinutes(30);
        var pass = await NewScheduler().RunOnceAsync(now, default);
        Assert.Equal(expected, pass.Enqueued);
        var expectedRuns = new[] { T0 }.Concat(Enumerable.Range(0, expected).Select(i => T0.AddHours(10 - expected + 1 + i)));
        Assert.Equal(expectedRuns, (await RunsAsync("hourly")).Select(r => r.RunAt));
        Assert.Equal(T0.AddHours(11), pass.NextRunAt);

        // Afterwards the task runs normally from now on.
        var scheduler = NewScheduler();
        await scheduler.RunOnceAsync(now, default);
        Assert.Equal(1, (await scheduler.RunOnceAsync(T0.AddHours(11).AddSeconds(1), default)).Enqueued);
    }

    [Fact]
    public async Task A_tick_missed_by_less_than_the_misfire_threshold_is_still_enqueued_under_skip()
    {
        await AddAsync(Task("minutely", "* * * * *"));
        Assert.NotNull(await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("minutely", T0, Job(), T0), default));
        var pass = await NewScheduler().RunOnceAsync(T0.AddMinutes(1).AddSeconds(30), default);
        Assert.Equal(1, pass.Enqueued);
    }

    [Fact]
    public async Task Once_does_not_add_a_catch_up_run_when_a_tick_is_due_now()
    {
        await AddAsync(Task("minutely", "* * * * *", RecurringCatchUp.Once));
        Assert.NotNull(await Storage.RecurringEnqueueAsync(new RecurringEnqueueParams("minutely", T0, Job(), T0), default));
        var pass = await NewScheduler().RunOnceAsync(T0.AddMinutes(30).AddSeconds(10), default);
        Assert.Equal(1, pass.Enqueued);
        Assert.Equal([T0, T0.AddMinutes(30)], (await RunsAsync("minutely")).Select(r => r.RunAt));
    }

    [Theory]
    [InlineData("*/15 * * * *", 15)]
    [InlineData("*/20 * * * * *", 20.0 / 60)]
    [InlineData("@hourly", 60)]
    [InlineData("0 0 * * * *", 60)]
    public async Task Five_and_six_field_crons_and_macros_tick_as_written(string schedule, double minutes)
    {
        await AddAsync(Task("t", schedule));
        var scheduler = NewScheduler(o => o.Scheduler.MisfireThreshold = TimeSpan.FromHours(2));
        await scheduler.RunOnceAsync(T0, default);
        var pass = await scheduler.RunOnceAsync(T0.AddMinutes(minutes * 3), default);
        Assert.Equal(3, pass.Enqueued);
        Assert.Equal(Enumerable.Range(1, 3).Select(i => T0.AddMinutes(minutes * i)), (await RunsAsync("t")).Select(r => r.RunAt));
    }

    [Fact]
    public async Task A_daily_nine_oclock_in_Paris_runs_at_eight_UTC_in_winter_and_seven_in_summer()
    {
        await AddAsync(Task("paris", "0 9 * * *", zone: "Europe/Paris"));
        var scheduler = NewScheduler();
        var winter = new DateTimeOffset(2030, 1, 15, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(winter.AddHours(8), (await scheduler.RunOnceAsync(winter, default)).NextRunAt);
        Assert.Equal(1, (await scheduler.RunOnceAsync(winter.AddHours(8).AddSeconds(1), default)).Enqueued);
        Assert.Equal([winter.AddHours(8)], (await RunsAsync("paris")).Select(r => r.RunAt));

        await Storage.RecurringTaskDeleteAsync(new RecurringTaskDeleteParams("paris"), default);
        await AddAsync(Task("paris-summer", "0 9 * * *", zone: "Europe/Paris"));
        var summer = new DateTimeOffset(2030, 7, 15, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(summer.AddHours(7), (await NewScheduler().RunOnceAsync(summer, default)).NextRunAt);
    }

    [Fact]
    public async Task The_job_takes_queue_priority_and_attempts_from_the_task_else_from_its_kind()
    {
        await AddAsync(Task("own", "* * * * *", queue: "reports", priority: -3, maxAttempts: 1));
        await AddAsync(Task("kind", "* * * * *"));
        var scheduler = NewScheduler();
        await scheduler.RunOnceAsync(T0.AddSeconds(-1), default);
        Assert.Equal(2, (await scheduler.RunOnceAsync(T0.AddSeconds(1), default)).Enqueued);
        var own = await Storage.JobGetAsync((await RunsAsync("own"))[0].JobId!.Value, default);
        var kind = await Storage.JobGetAsync((await RunsAsync("kind"))[0].JobId!.Value, default);
        Assert.Equal(("reports", -3, 1, "{\"n\":1}"), (own!.Queue, own.Priority, own.MaxAttempts, own.Args));
        Assert.Equal(("counting", 7, 4), (kind!.Queue, kind.Priority, kind.MaxAttempts));
    }

    [Fact]
    public async Task A_task_with_an_unknown_kind_or_a_bad_schedule_in_the_table_is_skipped_and_others_still_run()
    {
        await AddAsync(Task("good", "* * * * *"));
        await AddAsync(Task("bad-cron", "not a cron"));
        await AddAsync(Task("bad-kind", "* * * * *") with { Kind = "nobody-registered-this" });
        var scheduler = NewScheduler();
        await scheduler.RunOnceAsync(T0.AddSeconds(-1), default);
        Assert.Equal(1, (await scheduler.RunOnceAsync(T0.AddSeconds(1), default)).Enqueued);
        Assert.Single(await RunsAsync("good"));
    }

    [Fact]
    public async Task Static_tasks_are_synchronised_from_options_when_a_scheduler_starts()
    {
        await Storage.RecurringTasksSyncAsync(new RecurringTasksSyncParams([Task("old", "@daily", isStatic: true)], T0), default);
        await AddAsync(Task("dynamic", "@daily"));
        var scheduler = NewScheduler(o => o.Recurring["nightly"] = new RecurringTaskOptions { Kind = "count", Schedule = "0 2 * * *", Args = "{\"n\":2}" });
        await scheduler.SyncStaticTasksAsync(default);
        var tasks = await Storage.RecurringTasksListAsync(new RecurringTasksListParams(), default);
        Assert.Equal([("dynamic", false), ("nightly", true)], tasks.Select(t => (t.Task.Key, t.Task.Static)));
    }

    [Fact]
    public async Task A_running_scheduler_picks_up_dynamic_tasks_added_and_removed()
    {
        using var stop = new CancellationTokenSource();
        var scheduler = NewScheduler();
        var loop = System.Threading.Tasks.Task.Run(() => scheduler.RunAsync(stop.Token));
        try
        {
            await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Scheduler'") == 1, TimeSpan.FromSeconds(10), "the scheduler registered");
            await AddAsync(Task("dyn", "* * * * * *"));
            await Eventually.WaitUntilAsync(async () => (await RunsAsync("dyn")).Count >= 1, TimeSpan.FromSeconds(10), "the dynamic task ran");

            await Storage.RecurringTaskDeleteAsync(new RecurringTaskDeleteParams("dyn"), default);
            await System.Threading.Tasks.Task.Delay(300); // More than the polling interval: the removal is seen.
            var count = (await RunsAsync("dyn")).Count;
            await System.Threading.Tasks.Task.Delay(1500);
            Assert.Equal(count, (await RunsAsync("dyn")).Count);
        }
        finally
        {
            await stop.CancelAsync();
            await loop;
        }
    }
#pragma warning restore CS1591
}

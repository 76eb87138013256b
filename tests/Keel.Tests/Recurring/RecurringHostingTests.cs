using Keel.Hosting;
using Keel.Tests.EndToEnd;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Keel.Tests.Recurring;

/// <summary>Recurring tasks through a real host: configuration, validation at start, the in-process scheduler, the API.</summary>
public sealed class RecurringHostingTests : IAsyncLifetime
{
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(Engine.Sqlite);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private IHost Build(Recorder recorder, IDictionary<string, string?>? settings = null, Action<IKeelBuilder>? keel = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Services.AddSingleton(recorder);
        builder.Services.AddKeel(k =>
        {
            k.UseStorage(_ => _db.Storage).AddJob<CountingJob>();
            k.Configure(o =>
            {
                o.Dispatcher.PollingInterval = TimeSpan.FromMilliseconds(50);
                o.Workers.Add(KeelHost.Worker(2));
                o.Scheduler.PollingInterval = TimeSpan.FromMilliseconds(100);
            });
            keel?.Invoke(k);
        });
        return builder.Build();
    }

    private static Dictionary<string, string?> Task(string schedule = "0 3 * * *", string kind = "count", string? zone = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Keel:Recurring:nightly-report:Kind"] = kind,
            ["Keel:Recurring:nightly-report:Schedule"] = schedule,
        };
        if (zone is not null)
        {
            settings["Keel:Recurring:nightly-report:TimeZone"] = zone;
        }

        return settings;
    }

    [Fact]
    public void Tasks_bind_from_the_Keel_Recurring_section_by_key()
    {
        var settings = Task("0 9 * * 1-5", zone: "Europe/Paris");
        settings["Keel:Recurring:nightly-report:Args"] = "{\"n\":5}";
        settings["Keel:Recurring:nightly-report:CatchUp"] = "All";
        settings["Keel:Recurring:nightly-report:CatchUpLimit"] = "4";
        settings["Keel:Recurring:nightly-report:Queue"] = "reports";
        settings["Keel:Recurring:nightly-report:Priority"] = "-1";
        settings["Keel:Scheduler:PollingInterval"] = "00:00:02";
        using var host = Build(new Recorder(), settings);
        var options = host.Services.GetRequiredService<IOptions<KeelOptions>>().Value;
        var task = Assert.Single(options.Recurring);
        Assert.Equal("nightly-report", task.Key);
        Assert.Equal(("count", "0 9 * * 1-5", "Europe/Paris", "{\"n\":5}", RecurringCatchUp.All, 4, "reports", (int?)-1),
            (task.Value.Kind, task.Value.Schedule, task.Value.TimeZone, task.Value.Args, task.Value.CatchUp, task.Value.CatchUpLimit, task.Value.Queue, task.Value.Priority));
        Assert.Equal(TimeSpan.FromMilliseconds(100), options.Scheduler.PollingInterval); // Code configuration runs after binding.
        Assert.True(SchedulerOptions.ShouldRun(options));
    }

    [Theory]
    [InlineData("61 * * * *", "count", null, "Keel:Recurring:nightly-report:Schedule '61 * * * *' is not a valid cron expression")]
    [InlineData("* * *", "count", null, "Keel:Recurring:nightly-report:Schedule '* * *' is not a valid cron expression: it has 3 fields")]
    [InlineData("@hourly", "no-such-kind", null, "Keel:Recurring:nightly-report:Kind 'no-such-kind' is not a registered job kind")]
    [InlineData("@hourly", "count", "Mars/Olympus_Mons", "Keel:Recurring:nightly-report:TimeZone 'Mars/Olympus_Mons' is not a known time zone")]
    public async Task An_invalid_task_stops_start_up_with_a_message_naming_the_task(string schedule, string kind, string? zone, string expected)
    {
        using var host = Build(new Recorder(), Task(schedule, kind, zone));
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_tasks"));
    }

    [Fact]
    public async Task Arguments_that_do_not_fit_the_kind_stop_start_up()
    {
        var settings = Task();
        settings["Keel:Recurring:nightly-report:Args"] = "{\"n\":\"not a number\"}";
        using var host = Build(new Recorder(), settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("Keel:Recurring:nightly-report:Args do not deserialize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_configured_task_runs_in_process_and_a_host_without_tasks_runs_no_scheduler()
    {
        using (var idle = Build(new Recorder()))
        {
            await idle.StartAsync();
            await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Dispatcher'") == 1, TimeSpan.FromSeconds(10), "the dispatcher registered");
            Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Scheduler'"));
            await idle.StopAsync();
        }

        var recorder = new Recorder();
        using var host = Build(recorder, Task("* * * * * *"));
        await host.StartAsync();
        try
        {
            await Eventually.WaitUntilAsync(() => System.Threading.Tasks.Task.FromResult(recorder.Total >= 2), TimeSpan.FromSeconds(15), "the recurring job ran twice");
            Assert.Equal(1, await _db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Scheduler'"));
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Tasks_declared_in_code_join_configuration_and_a_removed_task_is_removed_from_the_table()
    {
        using (var first = Build(new Recorder(), Task(), k => k.AddRecurring<CountingJob, CountArgs>("coded", "@daily", new CountArgs(3, "x"), t => t.TimeZone = "Europe/Paris")))
        {
            var options = first.Services.GetRequiredService<IOptions<KeelOptions>>().Value;
            Assert.Equal(("count", "{\"n\":3,\"label\":\"x\"}", "Europe/Paris"), (options.Recurring["coded"].Kind, options.Recurring["coded"].Args, options.Recurring["coded"].TimeZone));
            await first.StartAsync();
            await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_tasks") == 2, TimeSpan.FromSeconds(10), "both tasks were synchronised");
            await first.StopAsync();
        }

        // Restarted with the configured task gone: it is removed; the coded one stays; a dynamic one is untouched.
        await _db.ExecuteAsync("INSERT INTO keel_recurring_tasks (key, kind, args, schedule, static, created_at, updated_at) VALUES ('dynamic', 'count', '{}', '@daily', 0, 0, 0)");
        using var second = Build(new Recorder(), keel: k => k.AddRecurring("coded", t =>
        {
            t.Kind = "count";
            t.Schedule = "@daily";
        }));
        await second.StartAsync();
        await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_tasks WHERE key = 'nightly-report'") == 0, TimeSpan.FromSeconds(10), "the removed task was removed");
        await second.StopAsync();
        var keys = (await second.Services.GetRequiredService<IKeelRecurring>().ListAsync()).Select(t => t.Task.Key);
        Assert.Equal(["coded", "dynamic"], keys);
    }

    [Fact]
    public async Task The_recurring_api_adds_lists_runs_now_and_removes_dynamic_tasks()
    {
        var recorder = new Recorder();
        using var host = Build(recorder, Task(), k => k.Configure(o => o.Scheduler.Enabled = true));
        await host.StartAsync();
        try
        {
            var api = host.Services.GetRequiredService<IKeelRecurring>();
            await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_tasks") == 1, TimeSpan.FromSeconds(10), "the static task was synchronised");
            var invalid = await Assert.ThrowsAsync<ArgumentException>(() => api.AddOrUpdateAsync("dyn", new RecurringTaskOptions { Kind = "count", Schedule = "99 * * * *" }));
            Assert.Contains("recurring task 'dyn':Schedule '99 * * * *'", invalid.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<ArgumentException>(() => api.AddOrUpdateAsync("dyn", new RecurringTaskOptions { Kind = "nope", Schedule = "@hourly" }));
            await Assert.ThrowsAsync<InvalidOperationException>(() => api.AddOrUpdateAsync("nightly-report", new RecurringTaskOptions { Kind = "count", Schedule = "@hourly" }));

            await api.AddOrUpdateAsync("dyn", new RecurringTaskOptions { Kind = "count", Schedule = "0 9 * * *", TimeZone = "Europe/Paris", Args = "{\"n\":9}" });
            var listed = (await api.ListAsync()).Single(t => t.Task.Key == "dyn");
            Assert.False(listed.Task.Static);
            Assert.Null(listed.LastRunAt);
            Assert.NotNull(listed.NextRunAt);
            Assert.Equal(9, TimeZoneInfo.ConvertTime(listed.NextRunAt.Value, TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris")).Hour);

            var jobId = await api.RunNowAsync("dyn");
            await Eventually.WaitUntilAsync(() => System.Threading.Tasks.Task.FromResult(recorder.Runs.ContainsKey(jobId)), TimeSpan.FromSeconds(10), "the run-now job ran");
            Assert.Equal(jobId, (await api.ListAsync()).Single(t => t.Task.Key == "dyn").LastJobId);
            Assert.NotEqual(jobId, await api.RunNowAsync("dyn")); // Run now again: another job, not deduplicated away.
            await Assert.ThrowsAsync<InvalidOperationException>(() => api.RunNowAsync("missing"));

            Assert.True(await api.RemoveAsync("dyn"));
            Assert.False(await api.RemoveAsync("nightly-report")); // Static: changed through configuration only.
            Assert.Equal(["nightly-report"], (await api.ListAsync()).Select(t => t.Task.Key));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}

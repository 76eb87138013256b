using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;

namespace Keel.Tests.Recurring;

/// <summary>Process mode: the supervisor starts a scheduler child when tasks are configured, and replaces it when it dies.</summary>
[Collection(RealProcesses.Name)]
public sealed class RecurringProcessModeTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(Engine.Sqlite);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact]
    public async Task The_supervisor_runs_a_scheduler_child_and_replaces_it_when_it_is_killed()
    {
        var settings = SupervisedApp.FastSettings(workerProcesses: 1, threads: 2);
        settings["Keel:Recurring:tick:Kind"] = "recorded";
        settings["Keel:Recurring:tick:Schedule"] = "* * * * * *";
        settings["Keel:Recurring:tick:Args"] = "{\"milliseconds\":1}";
        settings["Keel:Scheduler:PollingInterval"] = "00:00:00.200";
        await using var app = await SupervisedApp.StartAsync(_db, settings);

        await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE kind = 'recorded' AND finished_at IS NOT NULL") >= 2, Patience, "recurring jobs ran");
        var scheduler = Assert.Single(await app.ProcessesAsync(), p => p.Kind == "Scheduler");
        Assert.NotNull(scheduler.SupervisorId);

        Assert.True(SupervisedApp.Signal(scheduler.Pid, SupervisedApp.SIGKILL));
        await Eventually.WaitUntilAsync(async () => (await app.ProcessesAsync()).Any(p => p.Kind == "Scheduler" && p.Pid != scheduler.Pid), Patience, "a new scheduler child registered");
        var before = await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_executions");
        await Eventually.WaitUntilAsync(async () => await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_executions") > before, Patience, "the new scheduler enqueues");

        Assert.Equal(0, await app.StopAsync());
        Assert.Equal(
            await _db.ScalarAsync("SELECT count(*) FROM keel_recurring_executions"),
            await _db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE kind = 'recorded'"));
    }
}

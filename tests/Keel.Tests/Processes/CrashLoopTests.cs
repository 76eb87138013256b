using System.Text.RegularExpressions;
using Keel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Keel.Tests.Processes;

/// <summary>
/// A worker that dies before it registers, every time, is crash-looping: the supervisor restarts it after a pause that
/// doubles (250 ms up to 30 s), logs the crash loop from the fifth exit in a row, and keeps the rest of the app (its
/// dispatcher) running meanwhile.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed partial class CrashLoopTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_worker_that_keeps_dying_before_it_registers_is_restarted_after_growing_pauses_and_the_rest_runs_on()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        var settings = SupervisedApp.FastSettings(workerProcesses: 1, threads: 1);
        settings["Test:CrashWorkersAtStart"] = "true";
        await using var app = await SupervisedApp.StartAsync(db, settings);

        try
        {
            await Eventually.WaitUntilAsync(() => Task.FromResult(Pauses(app.Output).Count >= 5), TimeSpan.FromSeconds(60), "five paused restarts");
        }
        catch (TimeoutException)
        {
            output.WriteLine(app.Output);
            throw;
        }

        var pauses = Pauses(app.Output);
        output.WriteLine(string.Join(", ", pauses));
        Assert.Equal([.. pauses.Take(5).Select(p => p.Failures)], [2, 3, 4, 5, 6]);
        Assert.Equal([.. pauses.Take(5).Select(p => p.Pause)], [TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4)]);
        Assert.Contains("crash loop", app.Output, StringComparison.Ordinal);

        // The dispatcher (its own spec, its own pause) never waited for the worker's.
        Assert.False(app.Supervisor.HasExited);
        Assert.Equal(1, await db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Dispatcher'"));
        Assert.Equal(0, await db.ScalarAsync("SELECT count(*) FROM keel_processes WHERE kind = 'Worker'"));
        Assert.Equal(0, await app.StopAsync());
    }

    private static List<(TimeSpan Pause, int Failures)> Pauses(string log)
        => [.. PausePattern().Matches(log).Select(m => (TimeSpan.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)))];

    [GeneratedRegex(@"Restarting worker\[0\] in (\S+) \((\d+) quick exits in a row\)")]
    private static partial Regex PausePattern();
}

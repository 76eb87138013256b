using System.Globalization;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Keel.Tests.Processes;

/// <summary>
/// Checkpoints survive crashes (docs/running-jobs.md): a job that saves one every 100 items has its worker killed with
/// SIGKILL at a random point three times, and its own log proves that every attempt resumed at the last checkpoint
/// saved, so that the checkpointed segments cover every item exactly once — on every engine.
/// </summary>
[Collection(RealProcesses.Name)]
public abstract class CheckpointCrashTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Items = 1500;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private sealed record ItemLine(string What, long JobId, int Attempt, int Pid, int Value);

    /// <summary>The job's own log, in the order each process wrote it, processes in the order they resumed the job.</summary>
    private static List<List<ItemLine>> ReadItemLog(string folder)
    {
        var perProcess = new List<List<ItemLine>>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.items"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var lines = new List<ItemLine>();
            while (reader.ReadLine() is { } text)
            {
                var f = text.Split(' ');
                if (f.Length == 5)
                {
                    lines.Add(new ItemLine(f[0], long.Parse(f[1], CultureInfo.InvariantCulture), int.Parse(f[2], CultureInfo.InvariantCulture), int.Parse(f[3], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture)));
                }
            }

            if (lines.Count > 0)
            {
                perProcess.Add(lines);
            }
        }

        return [.. perProcess.OrderBy(lines => lines[0].Attempt)];
    }

    [Fact]
    public async Task A_job_killed_three_times_at_random_points_resumes_at_its_checkpoints_and_processes_every_item_once()
    {
        var seed = Environment.TickCount;
        output.WriteLine($"{Engine}: seed {seed}");
        var random = new Random(seed);
        var id = (await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("checkpointed", "default", $"{{\"items\":{Items},\"milliseconds\":2}}", 0, 20, null, 10)], null), default))[0];
        await using var app = await SupervisedApp.StartAsync(Db, SupervisedApp.FastSettings(workerProcesses: 1, threads: 1));

        for (var kill = 0; kill < 3; kill++)
        {
            // Running in a fresh process that has saved a checkpoint of its own: then kill it at a random point.
            var pid = 0;
            await Eventually.WaitUntilAsync(
                () =>
                {
                    // One read: a second one could see the next process's first line and pair it with this read's pid.
                    var attempts = ReadItemLog(app.RunLogPath);
                    var attempt = attempts.LastOrDefault();
                    pid = attempt?[0].Pid ?? 0;
                    return Task.FromResult(attempt is not null && attempt.Count(l => l.What == "saved") >= 1 && attempt.All(l => l.What != "done") && attempts.Count == kill + 1);
                },
                Patience,
                $"attempt {kill + 1} runs and saves a checkpoint");
            await Task.Delay(random.Next(0, 500));
            Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGKILL), $"kill {pid}: the worker process was gone before the kill; the app said:\n{app.Output}");
        }

        await Eventually.WaitUntilAsync(async () => (await Db.Storage.JobGetAsync(id, default))!.State == JobState.Finished, Patience, "the job finishes");

        var attempts = ReadItemLog(app.RunLogPath);
        Assert.Equal(4, attempts.Count);
        var committed = new List<(int From, int To)>();
        for (var a = 0; a < attempts.Count; a++)
        {
            var lines = attempts[a];
            var resume = lines[0];
            Assert.Equal("resume", resume.What);
            var items = lines.Where(l => l.What == "item").Select(l => l.Value).ToList();
            Assert.Equal(Enumerable.Range(resume.Value, items.Count), items); // contiguous from where it resumed
            var reached = resume.Value + items.Count;
            output.WriteLine($"attempt {resume.Attempt} (pid {resume.Pid}): resumed at {resume.Value}, processed up to {reached}, saved {string.Join(',', lines.Where(l => l.What == "saved").Select(l => l.Value))}");
            if (a == attempts.Count - 1)
            {
                Assert.Equal((Items, "done"), (reached, lines[^1].What));
                committed.Add((resume.Value, Items));
                continue;
            }

            // The next attempt resumed exactly at the last checkpoint this one saved (or at the one it saved just as it
            // was killed, before it could log it): never before it, never past the items it processed.
            var next = attempts[a + 1][0].Value;
            var lastLogged = lines.Where(l => l.What == "saved").Max(l => l.Value);
            Assert.True(next == lastLogged || (next == lastLogged + 100 && next <= reached), $"attempt {a + 2} resumed at {next}; attempt {a + 1} logged its last checkpoint at {lastLogged} and processed up to {reached}");
            Assert.True(next > resume.Value, "every killed attempt saved progress");
            committed.Add((resume.Value, next));
        }

        // The checkpointed segments cover every item exactly once.
        var coverage = new int[Items];
        foreach (var (from, to) in committed)
        {
            for (var i = from; i < to; i++)
            {
                coverage[i]++;
            }
        }

        Assert.All(coverage, c => Assert.Equal(1, c));
        var job = (await Db.Storage.JobGetAsync(id, default))!;
        Assert.Equal((4, 3), (job.Attempts, job.WorkerLosses));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE checkpoint IS NOT NULL"));
        Assert.Equal(0, await app.StopAsync());
    }
}

public sealed class SqliteCheckpointCrashTests(ITestOutputHelper output) : CheckpointCrashTests(output)
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlCheckpointCrashTests(ITestOutputHelper output) : CheckpointCrashTests(output)
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlCheckpointCrashTests(ITestOutputHelper output) : CheckpointCrashTests(output)
{
    protected override Engine Engine => Engine.MySql;
}

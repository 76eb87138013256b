using System.Data.Common;
using System.Globalization;
using System.Net.Sockets;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Xunit.Abstractions;

namespace Keel.Tests.Faults;

/// <summary>A process row as it was before a fault: which app's it was and which OS process it stood for.</summary>
/// <param name="App">The app (host) the process belongs to.</param>
/// <param name="Id">The row id.</param>
/// <param name="Name">The row name.</param>
/// <param name="Kind">Supervisor, Worker or Dispatcher.</param>
/// <param name="Pid">The OS process.</param>
public sealed record ProcessSnapshot(string App, long Id, string Name, string Kind, int Pid)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Kind} {Name} (row {Id}, pid {Pid}, {App})");
}

/// <summary>
/// One fault test's world: a database, the apps (hosts in process mode) running the test app against it, and
/// the checks of DESIGN §2 made from the database and the run logs once the fault is over. Every check adds a
/// violation instead of stopping at the first, so a failure lists everything that went wrong, with the timeline
/// of the faults.
/// </summary>
public sealed class FaultScene : IAsyncDisposable
{
    private const int MaxShownPerKind = 12;
    private static readonly TimeSpan StartPatience = TimeSpan.FromSeconds(15);
    private readonly ITestOutputHelper _output;
    private readonly List<(string Name, SupervisedApp App)> _apps = [];
    private readonly List<string> _violations = [];
    private readonly List<string> _timeline = [];
    private readonly HashSet<int> _killed = [];
    private readonly PidWatch _watch;
    private int _total;

    public FaultScene(ITestOutputHelper output, TestDatabase db)
    {
        _output = output;
        Db = db;
        Note("scene set up: starting the apps");
        _watch = new PidWatch(() =>
        {
            lock (_apps)
            {
                return [.. _apps.SelectMany(a => a.App.RunLogPids())];
            }
        });
    }

    /// <summary>The database as the test reads it: directly, or through the same address as the apps when the server itself moves (failover).</summary>
    public TestDatabase Db { get; }

    /// <summary>Every app started, by name.</summary>
    public IReadOnlyList<(string Name, SupervisedApp App)> Apps
    {
        get
        {
            lock (_apps)
            {
                return [.. _apps];
            }
        }
    }

    /// <summary>What went wrong so far.</summary>
    public IReadOnlyList<string> Violations => _violations;

    /// <summary>
    /// Test settings for one app: the fast liveness of <see cref="SupervisedApp.FastSettings"/> (200 ms heartbeats,
    /// 1.2 s threshold), LivenessCheckInterval at 200 ms too, and Keel's own logs at Information so a prune shows.
    /// </summary>
    public static Dictionary<string, string> Settings(int workerProcesses, int threads)
    {
        var settings = SupervisedApp.FastSettings(workerProcesses, threads);
        settings["Keel:LivenessCheckInterval"] = "00:00:00.200";
        return settings;
    }

    /// <summary>
    /// Starts apps at once and waits until each has registered its workers and dispatcher. Apps that cannot keep
    /// them registered within <see cref="StartPatience"/> (normal starts take 1 to 5 s; here they keep being pruned)
    /// are a violation, and the test goes on.
    /// </summary>
    public async Task StartAsync(params (string Name, int Workers, int Threads, string? Database)[] apps)
    {
        var started = new List<(string Name, int Workers, SupervisedApp App)>();
        foreach (var (name, workers, threads, database) in apps)
        {
            var app = await SupervisedApp.StartAsync(Db, Settings(workers, threads), database);
            lock (_apps)
            {
                _apps.Add((name, app));
            }

            started.Add((name, workers, app));
        }

        var deadline = DateTime.UtcNow + StartPatience;
        foreach (var (name, workers, app) in started)
        {
            try
            {
                var left = deadline - DateTime.UtcNow;
                await WaitForAsync(() => RegisteredAsync(name, workers, app), left > TimeSpan.Zero ? left : TimeSpan.Zero, $"app {name} registers {workers} workers and a dispatcher");
            }
            catch (TimeoutException e) when (!app.Supervisor.HasExited)
            {
                _violations.Add($"invariants 4 and 7 (no false positive): app {name} could not keep its processes registered while starting: {e.Message}");
            }
        }

        Note($"started {string.Join(", ", apps.Select(a => $"{a.Name} ({a.Workers}x{a.Threads})"))}");
    }

    /// <summary>The app called <paramref name="name"/>.</summary>
    public SupervisedApp App(string name) => Apps.Single(a => a.Name == name).App;

    /// <summary>Inserts <paramref name="count"/> jobs of <paramref name="kind"/> that sleep <paramref name="milliseconds"/> each.</summary>
    public async Task<IReadOnlyList<long>> InsertAsync(int count, int milliseconds, string kind = "recorded")
    {
        var ids = await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(_ => new NewJob(kind, "default", Args(milliseconds), 0, 25, null, 25))], null), default);
        _total += ids.Count;
        return ids;
    }

    /// <summary>Inserts jobs of the test app's <c>limited</c> kind: concurrency key <c>limited/shared</c>, limit one.</summary>
    public async Task<IReadOnlyList<long>> InsertLimitedAsync(int count, int milliseconds)
    {
        var jobs = Enumerable.Range(0, count).Select(_ => new NewJob("limited", "default", Args(milliseconds), 0, 10, null, 10)
        {
            ConcurrencyKey = "limited/shared",
            ConcurrencyLimit = 1,
            ConcurrencyDuration = TimeSpan.FromMinutes(5),
        });
        var ids = await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. jobs], null), default);
        _total += ids.Count;
        return ids;
    }

    /// <summary>Every process row of every app, as it is now.</summary>
    public async Task<IReadOnlyList<ProcessSnapshot>> SnapshotAsync()
    {
        var rows = await RetryAsync(() => Db.Storage.ProcessesListAsync(new ProcessesListParams(null, null), default));
        var apps = Apps;
        return [.. rows.Select(r => new ProcessSnapshot(apps.FirstOrDefault(a => IsOf(a.App, r)).Name ?? "?", r.Id, r.Name, r.Kind, r.Pid))];
    }

    /// <summary>The pid of the worker that holds <paramref name="jobId"/>'s claim once its run has started.</summary>
    public async Task<int> RunningPidAsync(long jobId, TimeSpan? timeout = null)
    {
        var pid = 0;
        await WaitForAsync(
            () =>
            {
                var started = Apps.SelectMany(a => a.App.RunLog()).Where(l => l.What == "start" && l.JobId == jobId).ToList();
                pid = started.Count > 0 ? started[^1].Pid : 0;
                return Task.FromResult(pid != 0);
            },
            timeout ?? TimeSpan.FromSeconds(30),
            $"job {jobId} starts");
        return pid;
    }

    /// <summary>Adds a line to the timeline printed with the result.</summary>
    public void Note(string what)
    {
        var line = $"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {what}";
        lock (_timeline)
        {
            _timeline.Add(line);
        }

        _output.WriteLine(line);
    }

    /// <summary>SIGKILLs <paramref name="pid"/> and remembers it: a killed process may lose its row and charge a loss.</summary>
    public void Kill(int pid)
    {
        _killed.Add(pid);
        Assert.True(SupervisedApp.Signal(pid, SupervisedApp.SIGKILL), $"pid {pid} could not be killed");
        Note($"SIGKILL pid {pid}");
    }

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds; a transient database error (the fault may still be
    /// settling) counts as "not yet".
    /// </summary>
    public static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout, string description)
    {
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (IsTransient(e))
            {
                last = e;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out after {timeout} waiting until {description}" + (last is null ? string.Empty : $" (last database error: {last.Message})"));
            }

            await Task.Delay(25);
        }
    }

    /// <summary>
    /// Waits until every inserted job has finished (at most <paramref name="timeout"/>; recovery is bounded to a
    /// few seconds, the rest is work), or records which did not and why.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        try
        {
            await WaitForAsync(async () => await ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NULL") == 0, timeout, $"all {_total} jobs finish");
            Note($"all {_total} jobs finished");
        }
        catch (TimeoutException e)
        {
            Note("drain timed out");
            _violations.Add($"invariant 1 (at least once): {e.Message}; unfinished:\n    " + string.Join("\n    ", await UnfinishedAsync()));
        }
    }

    /// <summary>
    /// The checks of DESIGN §2 after the run drained: no overlapping runs (9), no live process pruned (4, 7), no
    /// worker loss charged but for a process the test killed (5), nothing left claimed, ready or failed (1, 8).
    /// </summary>
    /// <param name="before">The process rows before the fault.</param>
    /// <param name="limited">Jobs sharing a concurrency limit of one, if any.</param>
    /// <param name="prunable">
    /// Apps whose processes the fault may legitimately get pruned, charging their jobs a loss: the fault outlasted
    /// their lease. Overlap is checked all the same.
    /// </param>
    public async Task CheckAsync(IReadOnlyList<ProcessSnapshot> before, IReadOnlyList<long>? limited = null, IReadOnlyCollection<string>? prunable = null)
    {
        var runs = RunHistory.Read(Apps, _watch);
        foreach (var overlap in RunHistory.Overlaps(runs))
        {
            _violations.Add("invariant 9 (no overlap): " + overlap);
        }

        if (limited is { Count: > 0 })
        {
            foreach (var overlap in RunHistory.Overlaps(runs, limited.ToHashSet(), "limited/shared"))
            {
                _violations.Add("invariant 9 (no overlap, concurrency limit): " + overlap);
            }
        }

        await CheckNoLiveProcessPrunedAsync([.. before.Where(r => prunable?.Contains(r.App) != true)], prunable is not { Count: > 0 });

        var prunablePids = Apps.Where(a => prunable?.Contains(a.Name) == true).SelectMany(a => a.App.RunLogPids());
        await CheckWorkerLossesAsync([.. _killed, .. before.Where(r => prunable?.Contains(r.App) == true).Select(r => r.Pid), .. prunablePids]);

        foreach (var (table, what) in new[] { ("keel_claimed_executions", "claims"), ("keel_ready_executions", "ready jobs"), ("keel_failed_executions", "failed jobs"), ("keel_blocked_executions", "blocked jobs") })
        {
            var left = await ScalarAsync($"SELECT count(*) FROM {table}");
            if (left > 0)
            {
                _violations.Add($"invariants 1 and 8: {left} {what} left in {table} after the run drained");
            }
        }

        _output.WriteLine($"{runs.Count} runs of {_total} jobs; {runs.Count - runs.Select(r => r.JobId).Distinct().Count()} repeated");
    }

    /// <summary>
    /// Invariant 7: a process that cannot renew its lease stops its jobs before any other process may take them
    /// over. Every run of <paramref name="apps"/> under way at <paramref name="faultStart"/> (Unix ms) must have
    /// ended by <paramref name="takeoverAllowed"/>, the moment another process could take its job (the fault has
    /// outlasted the lease by then, and the database answers again).
    /// </summary>
    public void CheckStoppedBefore(long faultStart, long takeoverAllowed, IReadOnlyCollection<string> apps, string why)
    {
        var late = RunHistory.Read(Apps, _watch)
            .Where(r => apps.Contains(r.App) && r.StartedAt <= faultStart && (r.EndedAt ?? long.MaxValue) > faultStart && (r.EndedAt ?? long.MaxValue) > takeoverAllowed);
        foreach (var run in late)
        {
            _violations.Add($"invariant 7 (a process fences itself): job {run.JobId} was still running at {RunHistory.Time(takeoverAllowed)}, when {why}: {run}");
        }
    }

    /// <summary>SIGTERMs every app; each must exit 0 (no process crashes on a database fault, invariant 7).</summary>
    public async Task StopAppsAsync()
    {
        Note("SIGTERM to every app");
        foreach (var (name, app) in Apps)
        {
            try
            {
                var code = await app.StopAsync(TimeSpan.FromSeconds(30));
                if (code != 0)
                {
                    _violations.Add($"invariant 7: app {name}'s supervisor exited with {code} on SIGTERM");
                }
            }
            catch (TimeoutException)
            {
                _violations.Add($"invariant 6: app {name} did not stop within 30 s of SIGTERM");
            }
        }

        Note("every app stopped");
    }

    /// <summary>Fails with every violation, the timeline and each app's Keel warnings; passes when there were none.</summary>
    public void AssertNoViolations()
    {
        string[] timeline;
        lock (_timeline)
        {
            timeline = [.. _timeline];
        }

        if (_violations.Count == 0)
        {
            return;
        }

        var report = new List<string> { $"{_violations.Count} violations of DESIGN §2:" };
        foreach (var kind in _violations.GroupBy(v => v[..v.IndexOf(':', StringComparison.Ordinal)]))
        {
            report.AddRange(kind.Take(MaxShownPerKind).Select(v => "  - " + v));
            if (kind.Count() > MaxShownPerKind)
            {
                report.Add($"  - … and {kind.Count() - MaxShownPerKind} more of {kind.Key}");
            }
        }

        report.Add("timeline:");
        report.AddRange(timeline.Select(t => "  " + t));
        foreach (var (name, app) in Apps)
        {
            var warnings = app.Output.Split('\n').Where(l => l.Contains("Pruned process", StringComparison.Ordinal) || l.Contains("no longer registered", StringComparison.Ordinal) || l.Contains("could not heartbeat", StringComparison.Ordinal) || l.Contains("Late result", StringComparison.Ordinal)).Take(20).ToList();
            if (warnings.Count > 0)
            {
                report.Add($"app {name}'s Keel warnings (first {warnings.Count}):");
                report.AddRange(warnings.Select(w => "  " + Trim(w)));
            }
        }

        Assert.Fail(string.Join('\n', report));
    }

    public async ValueTask DisposeAsync()
    {
        await _watch.DisposeAsync();
        foreach (var (_, app) in Apps)
        {
            await app.DisposeAsync();
        }
    }

    private static async Task<bool> RegisteredAsync(string name, int workers, SupervisedApp app)
    {
        if (app.Supervisor.HasExited)
        {
            throw new InvalidOperationException($"app {name}'s supervisor exited with {app.Supervisor.ExitCode}:\n{app.Output}");
        }

        var rows = await app.ProcessesAsync();
        return rows.Count(r => r.Kind == "Worker" && IsOf(app, r)) >= workers && rows.Any(r => r.Kind == "Dispatcher" && IsOf(app, r));
    }

    private static string Args(int milliseconds) => string.Create(CultureInfo.InvariantCulture, $"{{\"milliseconds\":{milliseconds}}}");

    private static bool IsOf(SupervisedApp app, ProcessInfo row)
        => row.Pid == app.Supervisor.Id || (row.Kind != "Supervisor" && ParentOf(row.Pid) == app.Supervisor.Id);

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static bool IsTransient(Exception e)
        => e is Npgsql.NpgsqlException or Microsoft.Data.Sqlite.SqliteException or SocketException or IOException or TimeoutException or InvalidOperationException { InnerException: not null } or ObjectDisposedException;

    private static string Trim(string line) => line.Length > 400 ? line[..400] + "…" : line.TrimEnd('\r');

    /// <summary>Runs a query of the test's own, retrying while its pool still hands out connections a fault broke.</summary>
    private static async Task<T> RetryAsync<T>(Func<Task<T>> query)
    {
        T value = default!;
        await WaitForAsync(async () => { value = await query(); return true; }, TimeSpan.FromSeconds(15), "the database answers the test's query");
        return value;
    }

    private Task<long> ScalarAsync(string sql) => RetryAsync(() => Db.ScalarAsync(sql));

    private async Task CheckNoLiveProcessPrunedAsync(IReadOnlyList<ProcessSnapshot> before, bool noPruneAtAll)
    {
        var now = await SnapshotAsync();
        var outputs = Apps.Select(a => a.App.Output).ToList();
        if (noPruneAtAll)
        {
            // Processes started after the snapshot (replacements) count too: any prune of a process the test did not kill.
            var named = before.Select(r => "Pruned process " + r.Name + " ").ToList();
            foreach (var line in outputs.SelectMany(o => o.Split('\n')).Where(l => l.Contains("Pruned process ", StringComparison.Ordinal) && !named.Exists(n => l.Contains(n, StringComparison.Ordinal))))
            {
                var pid = System.Text.RegularExpressions.Regex.Match(line, @"\(pid (\d+)[ )]");
                if (!pid.Success || !_killed.Contains(int.Parse(pid.Groups[1].Value, CultureInfo.InvariantCulture)))
                {
                    _violations.Add("invariants 4 and 7 (no false positive): a process not in the snapshot taken before the fault (a replacement), and not killed, was pruned: " + Trim(line));
                }
            }
        }

        foreach (var row in before.Where(r => !_killed.Contains(r.Pid)))
        {
            var pruned = outputs.SelectMany(o => o.Split('\n'))
                .Where(l => l.Contains("Pruned process " + row.Name + " ", StringComparison.Ordinal))
                .Select(Trim)
                .ToList();
            var rowGone = now.All(r => r.Id != row.Id);
            var exited = !SupervisedApp.IsAlive(row.Pid);
            if (rowGone || exited || pruned.Count > 0)
            {
                var what = (rowGone, exited) switch
                {
                    (true, true) => "lost its process row, and its process has exited since (a pruned child exits; its supervisor started a new one)",
                    (true, false) => "lost its process row while its process still runs",
                    (false, true) => "kept its row but its process exited",
                    _ => "was pruned (and registered again)",
                };
                _violations.Add($"invariants 4 and 7 (no false positive): live {row} {what}" + (pruned.Count > 0 ? ":\n      " + string.Join("\n      ", pruned.Take(3)) : string.Empty));
            }
        }
    }

    /// <summary>Every job charged a worker loss must have lost one of <paramref name="mayDie"/> (each cause names its pid).</summary>
    private async Task CheckWorkerLossesAsync(IReadOnlyList<int> mayDie)
    {
        var charged = new List<long>();
        await WaitForAsync(
            async () =>
            {
                charged.Clear();
                await using var connection = await Db.OpenAsync();
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT id FROM keel_jobs WHERE worker_losses > 0 ORDER BY id";
                await using DbDataReader reader = await command.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    charged.Add(reader.GetInt64(0));
                }

                return true;
            },
            TimeSpan.FromSeconds(15),
            "the database lists worker losses");
        foreach (var id in charged)
        {
            var job = await RetryAsync(() => Db.Storage.JobGetAsync(id, default));
            var losses = job?.Errors.Where(e => e.ExceptionType == WorkerLostCause.ExceptionType).ToList() ?? [];
            var wrong = losses.Where(e => !mayDie.Any(pid => e.Message.Contains(string.Create(CultureInfo.InvariantCulture, $"(pid {pid} "), StringComparison.Ordinal) || e.Message.Contains(string.Create(CultureInfo.InvariantCulture, $"(pid {pid})"), StringComparison.Ordinal))).ToList();
            if (wrong.Count > 0 || losses.Count < job?.WorkerLosses)
            {
                _violations.Add($"invariant 5 (a loss is charged only when the process died): job {id} ({job?.Kind}) was charged {job?.WorkerLosses} worker losses, {wrong.Count} of them for a process that lived: {string.Join(" | ", wrong.Select(e => Trim(e.Message)))}");
            }
        }
    }

    private async Task<IReadOnlyList<string>> UnfinishedAsync()
    {
        var lines = new List<string>();
        try
        {
            var processes = await Db.Storage.ProcessesListAsync(new ProcessesListParams(null, null), default);
            var runs = RunHistory.Read(Apps, _watch);
            await using var connection = await Db.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT id FROM keel_jobs WHERE finished_at IS NULL ORDER BY id LIMIT 20";
            var ids = new List<long>();
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    ids.Add(reader.GetInt64(0));
                }
            }

            foreach (var id in ids)
            {
                var job = await Db.Storage.JobGetAsync(id, default);
                var owner = processes.FirstOrDefault(p => p.Id == job?.ClaimedByProcessId);
                var last = runs.LastOrDefault(r => r.JobId == id);
                var claim = owner is null
                    ? string.Empty
                    : string.Create(CultureInfo.InvariantCulture, $", claimed by {owner.Kind} {owner.Name} (pid {owner.Pid}, {(SupervisedApp.IsAlive(owner.Pid) ? "alive" : "gone")}, heartbeat {owner.HeartbeatAge.TotalSeconds:0.0} s ago)");
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"job {id} ({job?.Kind}) {job?.State}, attempts {job?.Attempts}{claim}{(last is null ? ", never started" : ", last run: " + last)}"));
            }
        }
        catch (Exception e) when (IsTransient(e))
        {
            lines.Add("(could not read them: " + e.Message + ")");
        }

        return lines;
    }
}

using System.Globalization;
using System.Net.Sockets;
using Keel.Storage;
using Keel.TestInfrastructure;
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
public sealed partial class FaultScene : IAsyncDisposable
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
            catch (TimeoutException) when (!app.Supervisor.HasExited)
            {
                _violations.Add(string.Create(CultureInfo.InvariantCulture, $"invariants 4 and 7 (no false positive): app {name} did not have {workers} workers and a dispatcher registered at once within {StartPatience.TotalSeconds:0} s of its start (its processes kept being pruned)"));
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

    public async ValueTask DisposeAsync()
    {
        await _watch.DisposeAsync();
        foreach (var (_, app) in Apps)
        {
            await app.DisposeAsync();
        }
    }

    /// <summary>Every app's name and run log, for <see cref="RunHistory.Read"/>.</summary>
    private IEnumerable<(string Name, IReadOnlyList<RunLogLine> Log)> RunLogs() => Apps.Select(a => (a.Name, a.App.RunLog()));

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
        => e is System.Data.Common.DbException or SocketException or IOException or TimeoutException or InvalidOperationException { InnerException: not null } or ObjectDisposedException;

    private static string Trim(string line) => line.Length > 400 ? line[..400] + "…" : line.TrimEnd('\r');

    /// <summary>Runs a query of the test's own, retrying while its pool still hands out connections a fault broke.</summary>
    private static async Task<T> RetryAsync<T>(Func<Task<T>> query)
    {
        T value = default!;
        await WaitForAsync(async () => { value = await query(); return true; }, TimeSpan.FromSeconds(15), "the database answers the test's query");
        return value;
    }

    private Task<long> ScalarAsync(string sql) => RetryAsync(() => Db.ScalarAsync(sql));
}

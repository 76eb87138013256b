using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

/// <summary>The liveness settings a recovery case runs with.</summary>
public sealed record Liveness(string Name, string Label, TimeSpan Heartbeat, TimeSpan AliveThreshold, TimeSpan PruneInterval, TimeSpan LivenessCheck, string[] Args)
{
    /// <summary>Keel's defaults (see src/Keel/KeelOptions.cs).</summary>
    public static readonly Liveness Defaults = new(
        "defaults",
        "defaults: heartbeat 5 s, alive threshold 30 s, prune every 5 s, liveness check every 1 s",
        TimeSpan.FromSeconds(5),
        TimeSpan.FromSeconds(30),
        TimeSpan.FromSeconds(5),
        TimeSpan.FromSeconds(1),
        []);

    /// <summary>The fast settings of the process and fault tests.</summary>
    public static readonly Liveness Fast = new(
        "fast",
        "fast: heartbeat 200 ms, alive threshold 1.2 s, prune every 200 ms, liveness check every 200 ms",
        TimeSpan.FromMilliseconds(200),
        TimeSpan.FromMilliseconds(1200),
        TimeSpan.FromMilliseconds(200),
        TimeSpan.FromMilliseconds(200),
        [
            "--Keel:HeartbeatInterval=00:00:00.200",
            "--Keel:AliveThreshold=00:00:01.200",
            "--Keel:PruneInterval=00:00:00.200",
            "--Keel:LivenessCheckInterval=00:00:00.200",
        ]);

    /// <summary>Keel's default <c>SessionGracePeriod</c> for these settings: 3 s, or half the alive threshold when shorter.</summary>
    public TimeSpan SessionGrace => AliveThreshold / 2 < TimeSpan.FromSeconds(3) ? AliveThreshold / 2 : TimeSpan.FromSeconds(3);
}

/// <summary>An app (a supervisor in process mode, or a plain host) of a scene.</summary>
public sealed record SceneApp(string Name, ChildHandle Handle, bool Standalone)
{
    public int Pid { get; } = Handle.Process.Id;
}

/// <summary>
/// One recovery case's world: a database, a run-log folder, the apps (this executable as a process-mode Keel app or a
/// plain host) running <see cref="SleepJob"/> against it, and the measurements made from the run log and the database
/// once the fault is over. Every process the scene started is stopped by pid (checked against its command line, which
/// carries the scene's run-log folder), and the folder is deleted, whatever happens.
/// </summary>
public sealed partial class RecoveryScene : IAsyncDisposable
{
    private static readonly TimeSpan RegisterPatience = TimeSpan.FromSeconds(90);
    private readonly BenchEngine _engine;
    private readonly bool _dropDatabase;
    private readonly List<SceneApp> _apps = [];
    private readonly ConcurrentDictionary<int, string> _members = new();
    private readonly HashSet<int> _signalled = [];
    private readonly List<Func<ValueTask>> _cleanups = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly PidWatch _watch;
    private readonly Task _membership;
    private IHost? _client;
    private int _pending;
    private bool _disposed;

    private RecoveryScene(BenchEngine engine, Liveness liveness, string database, bool dropDatabase)
    {
        _engine = engine;
        Liveness = liveness;
        Database = database;
        _dropDatabase = dropDatabase;
        RunLog = Directory.CreateTempSubdirectory("keel-bench-runlog-").FullName;
        _watch = new PidWatch(() => RunLogFiles.Pids(RunLog));
        _membership = Task.Run(TrackMembersAsync);
    }

    public Liveness Liveness { get; }

    /// <summary>The database as the bench reaches it, and the apps unless told otherwise.</summary>
    public string Database { get; }

    public string RunLog { get; }

    public BenchEngine Engine => _engine;

    public IKeelClient Keel => _client!.Services.GetRequiredService<IKeelClient>();

    public IKeelStorage Storage => _client!.Services.GetRequiredService<IKeelStorage>();

    public IReadOnlyList<SceneApp> Apps
    {
        get
        {
            lock (_apps)
            {
                return [.. _apps];
            }
        }
    }

    /// <summary>Processes the fault took out on purpose (killed, frozen, cut off, or killed by a poison job): their prunes are expected.</summary>
    public HashSet<int> Victims { get; } = [];

    /// <summary>Apps the fault cut off as a whole (every process of theirs may be pruned).</summary>
    public HashSet<string> VictimApps { get; } = [];

    /// <summary>Jobs the fault took away from their process: their second start is the takeover, not a re-run.</summary>
    public HashSet<long> LostJobs { get; } = [];

    /// <summary>What the case saw that the numbers do not say.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>
    /// A scene on a fresh database of <paramref name="engine"/> (dropped at the end), or on <paramref name="database"/> (a
    /// database of a server of the case's own, left to that server). The bench's client host migrates it.
    /// </summary>
    public static async Task<RecoveryScene> StartAsync(BenchEngine engine, Liveness liveness, string? database = null)
    {
        var scene = new RecoveryScene(engine, liveness, database ?? await engine.NewDatabaseAsync(), database is null);
        try
        {
            scene._client = BenchEngine.BuildHost(engine.Name, scene.Database, processJobs: false);
            await scene._client.StartAsync(); // migrates, so the apps and the bench agree on the schema from the start
            return scene;
        }
        catch
        {
            await scene.DisposeAsync();
            throw;
        }
    }

    /// <summary>Disposes <paramref name="resource"/> with the scene, after its apps are stopped (proxies, servers, poolers), last owned first.</summary>
    public T Own<T>(T resource)
        where T : IAsyncDisposable
    {
        lock (_cleanups)
        {
            _cleanups.Add(resource.DisposeAsync);
        }

        return resource;
    }

    /// <summary>
    /// Starts an app: in process mode a supervisor with <paramref name="workers"/> worker processes of
    /// <paramref name="threads"/> threads and a dispatcher; <paramref name="standalone"/>, a plain host with one worker
    /// and the dispatcher in-process. It reaches the database through <paramref name="database"/> when given.
    /// </summary>
    public SceneApp StartApp(string name, int workers, int threads, string? database = null, bool standalone = false)
    {
        string[] common =
        [
            $"--Keel:Database={database ?? Database}",
            $"--Bench:RunLog={RunLog}",
            string.Create(CultureInfo.InvariantCulture, $"--Keel:Workers:0:Threads={threads}"),
            "--Keel:ShutdownTimeout=00:00:05",
            "--Logging:LogLevel:Default=Warning",
            .. Liveness.Args,
            .. DiagnosticArgs(),
        ];
        var handle = standalone
            ? Child.Start([Child.Host, .. common])
            : Child.Start([Child.App, "start", string.Create(CultureInfo.InvariantCulture, $"--Keel:Workers:0:Processes={workers}"), .. common]);
        var app = new SceneApp(name, handle, standalone);
        lock (_apps)
        {
            _apps.Add(app);
        }

        _members[app.Pid] = name;
        return app;
    }

    /// <summary>The app a pid belonged to (its supervisor or one of the supervisor's children), or null.</summary>
    public string? AppOf(int pid) => _members.TryGetValue(pid, out var name) ? name : null;

    /// <summary>Waits until <paramref name="app"/> has <paramref name="workers"/> live worker rows and a dispatcher row.</summary>
    public Task WaitRegisteredAsync(SceneApp app, int workers)
        => WaitUntilAsync(
            async () =>
            {
                var rows = await Storage.ProcessesListAsync(new ProcessesListParams(null, null), CancellationToken.None);
                var mine = rows.Where(r => AppOf(r.Pid) == app.Name && Child.IsAlive(r.Pid)).ToList();
                return mine.Count(r => r.Kind == "Worker") >= workers && mine.Any(r => r.Kind == "Dispatcher");
            },
            RegisterPatience,
            $"app {app.Name} registers {workers} worker(s) and a dispatcher");

    /// <summary>Enqueues <paramref name="count"/> jobs held until the bench releases them (10 minutes at most).</summary>
    public async Task<IReadOnlyList<long>> EnqueueHeldAsync(int count)
    {
        var ids = await Keel.EnqueueManyAsync([.. Enumerable.Range(0, count).Select(_ => JobRequest.Create<SleepJob, SleepArgs>(new SleepArgs(600_000, Hold: true)))]);
        Interlocked.Add(ref _pending, ids.Count);
        return ids;
    }

    /// <summary>Enqueues <paramref name="requests"/> in batches of 1,000.</summary>
    public async Task<IReadOnlyList<long>> EnqueueAsync(IReadOnlyList<JobRequest> requests)
    {
        var ids = new List<long>();
        for (var i = 0; i < requests.Count; i += 1_000)
        {
            ids.AddRange(await Keel.EnqueueManyAsync([.. requests.Skip(i).Take(1_000)]));
        }

        Interlocked.Add(ref _pending, ids.Count);
        return ids;
    }

    /// <summary>Short jobs of <paramref name="milliseconds"/> each.</summary>
    public static IReadOnlyList<JobRequest> Short(int count, int milliseconds)
        => [.. Enumerable.Range(0, count).Select(_ => JobRequest.Create<SleepJob, SleepArgs>(new SleepArgs(milliseconds)))];

    public IReadOnlyList<RunLogLine> Log() => RunLogFiles.Read(RunLog);

    /// <summary>Waits until each of <paramref name="ids"/> has started somewhere.</summary>
    public Task WaitStartedAsync(IReadOnlyCollection<long> ids, TimeSpan? timeout = null)
        => WaitUntilAsync(
            () =>
            {
                var started = Log().Where(l => l.What == "start").Select(l => l.JobId).ToHashSet();
                return Task.FromResult(ids.All(started.Contains));
            },
            timeout ?? TimeSpan.FromSeconds(60),
            $"{ids.Count} jobs start");

    /// <summary>The runs under way now (started, not ended, their process alive), by pid.</summary>
    public Dictionary<int, List<long>> InFlight()
        => RunHistory.Read([("bench", Log())], _watch).Where(r => r.EndedAt is null).GroupBy(r => r.Pid).ToDictionary(g => g.Key, g => g.Select(r => r.JobId).ToList());

    /// <summary>Releases <paramref name="jobId"/>'s held run in <paramref name="pid"/>.</summary>
    public void Release(long jobId, int pid) => File.WriteAllText(RunLogWriter.ReleaseFile(RunLog, jobId, pid), string.Empty);

    /// <summary>Releases every held run, from now on.</summary>
    public void ReleaseAll() => File.WriteAllText(RunLogWriter.ReleaseAllFile(RunLog), string.Empty);

    /// <summary>
    /// Picks the worker process running the most of <paramref name="held"/> (at least two, so that Keel's blame releases
    /// them uncharged: a process that dies running one job is that job's doing as far as anyone can tell), releases the
    /// held runs of every other process and waits until they ended, so the survivors are idle when the fault comes.
    /// </summary>
    public async Task<(int Pid, HashSet<long> Jobs)> PickVictimAsync(IReadOnlyList<long> held, Func<int, bool>? eligible = null)
    {
        var heldSet = held.ToHashSet();
        var inFlight = InFlight().Where(p => eligible?.Invoke(p.Key) != false)
            .Select(p => (Pid: p.Key, Jobs: p.Value.Where(heldSet.Contains).ToHashSet()))
            .OrderByDescending(p => p.Jobs.Count)
            .ToList();
        if (inFlight.Count == 0 || inFlight[0].Jobs.Count < 2)
        {
            throw new InvalidOperationException($"no worker runs two or more of the held jobs (by pid: {string.Join(", ", inFlight.Select(p => $"{p.Pid}: {p.Jobs.Count}"))})");
        }

        var victim = inFlight[0];
        var others = InFlight().Where(p => p.Key != victim.Pid).SelectMany(p => p.Value.Select(j => (Job: j, Pid: p.Key))).ToList();
        foreach (var (job, pid) in others)
        {
            Release(job, pid);
        }

        await WaitUntilAsync(
            () => Task.FromResult(InFlight().Where(p => p.Key != victim.Pid).All(p => p.Value.Count == 0)),
            TimeSpan.FromSeconds(30),
            "the other processes' held jobs end");
        return (victim.Pid, victim.Jobs);
    }

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>, remembered as signalled on purpose.</summary>
    public void Signal(int pid, int signal)
    {
        lock (_signalled)
        {
            _signalled.Add(pid);
        }

        if (!Child.Signal(pid, signal))
        {
            throw new InvalidOperationException($"could not send signal {signal} to pid {pid}");
        }
    }

    /// <summary>SIGTERM to <paramref name="app"/> (a deploy's stop); returns its exit code and ms from the signal to its exit.</summary>
    public async Task<(int ExitCode, double Milliseconds)> TerminateAsync(SceneApp app)
    {
        var since = Stopwatch.GetTimestamp();
        Signal(app.Pid, Child.SIGTERM);
        try
        {
            await app.Handle.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"app {app.Name} did not exit within 60 s of SIGTERM; its output:\n{app.Handle.Output}");
        }

        return (app.Handle.Process.ExitCode, Milliseconds(Stopwatch.GetTimestamp() - since));
    }

    /// <summary>
    /// Waits until every one of <paramref name="jobs"/> starts again in a process other than <paramref name="victim"/>
    /// after <paramref name="since"/> (a Stopwatch timestamp); releases each such run at once (a suspect runs alone, so
    /// the next one waits for it). Returns ms from <paramref name="since"/> to the first and to the last restart.
    /// </summary>
    public async Task<(double First, double All)> TakeOverAsync(int victim, IReadOnlySet<long> jobs, long since, TimeSpan patience)
    {
        var restarted = new Dictionary<long, long>();
        await WaitUntilAsync(
            () =>
            {
                foreach (var line in Log().Where(l => l.What == "start" && l.Pid != victim && jobs.Contains(l.JobId) && l.Monotonic > since))
                {
                    if (restarted.TryAdd(line.JobId, line.Monotonic!.Value))
                    {
                        Release(line.JobId, line.Pid);
                    }
                }

                return Task.FromResult(restarted.Count == jobs.Count);
            },
            patience,
            $"the {jobs.Count} jobs of pid {victim} start again elsewhere");
        return (Milliseconds(restarted.Values.Min() - since), Milliseconds(restarted.Values.Max() - since));
    }

    /// <summary>
    /// Ms from <paramref name="faultAt"/> until the last of <paramref name="jobs"/> had its lost run ended in the database
    /// (its claim recovered: the job ready again, for anyone to claim), from the jobs' run histories; null when a job
    /// shows no such run.
    /// </summary>
    public async Task<double?> RecoveredAsync(IReadOnlyCollection<long> jobs, DateTimeOffset faultAt)
    {
        var latest = DateTimeOffset.MinValue;
        foreach (var id in jobs)
        {
            var job = await Keel.GetJobAsync(id);
            var ended = job?.Runs.Where(r => r.Outcome is not (JobRun.Running or JobRun.Finished) && r.EndedAt >= faultAt.AddSeconds(-1)).Select(r => r.EndedAt!.Value).DefaultIfEmpty().Min();
            if (ended is not { } at || at == default)
            {
                return null;
            }

            latest = at > latest ? at : latest;
        }

        return (latest - faultAt).TotalMilliseconds;
    }

    /// <summary>Ms from a Stopwatch timestamp difference.</summary>
    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>
    /// Ms from <paramref name="since"/> (a Stopwatch timestamp taken just before the fault was set off) until work resumed
    /// in <paramref name="app"/>: waits until the app starts a job after <paramref name="faultDone"/> (when the fault's
    /// own call returned), then takes the longest pause between job starts of the app from <paramref name="since"/> to
    /// that start — the outage — and returns when it ended. (The first start after <paramref name="since"/> alone would
    /// not do: a fault takes effect some milliseconds into its call, and jobs claimed just before start meanwhile.) Null
    /// when the app started nothing within <paramref name="patience"/>.
    /// </summary>
    public async Task<double?> ResumedAsync(string app, long since, long faultDone, TimeSpan patience)
    {
        long? back = null;
        try
        {
            await WaitUntilAsync(
                () =>
                {
                    back = Log().Where(l => l.What == "start" && l.Monotonic > faultDone && AppOf(l.Pid) == app).Select(l => l.Monotonic).Min();
                    return Task.FromResult(back is not null);
                },
                patience,
                $"app {app} starts a job");
        }
        catch (TimeoutException)
        {
            return null;
        }

        var starts = Log().Where(l => l.What == "start" && l.Monotonic > since && l.Monotonic <= back && AppOf(l.Pid) == app).Select(l => l.Monotonic!.Value).Order().ToList();
        var (previous, resumed, longest) = (since, back!.Value, -1L);
        foreach (var at in starts)
        {
            if (at - previous > longest)
            {
                (longest, resumed) = (at - previous, at);
            }

            previous = at;
        }

        return Milliseconds(resumed - since);
    }

    /// <summary>Polls <paramref name="condition"/> every 20 ms; a transient database error counts as "not yet". Throws when an app the bench did not signal exits.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
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

            ThrowIfBroken(what);
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"waited {timeout.TotalSeconds:0} s until {what}" + (last is null ? string.Empty : $" (last database error: {last.Message})"));
            }

            await Task.Delay(20);
        }
    }

    /// <summary>A count from the database, retried while a fault still settles.</summary>
    public async Task<long> CountAsync(string sql)
    {
        long value = 0;
        await WaitUntilAsync(async () => { value = await _engine.ScalarAsync(Database, sql); return true; }, TimeSpan.FromSeconds(60), "the database answers the bench");
        return value;
    }

    /// <summary>
    /// Releases every held job, waits until nothing is ready, claimed, scheduled or blocked (every job finished or failed
    /// for good), stops the apps with SIGTERM and measures the case.
    /// </summary>
    public async Task<Outcome> FinishAsync(Outcome outcome, TimeSpan? drain = null, Func<int, bool>? victim = null)
    {
        ReleaseAll();
        await WaitUntilAsync(
            async () => await _engine.ScalarAsync(Database, "SELECT (SELECT count(*) FROM keel_ready_executions) + (SELECT count(*) FROM keel_claimed_executions) + (SELECT count(*) FROM keel_scheduled_executions) + (SELECT count(*) FROM keel_blocked_executions)") == 0,
            drain ?? TimeSpan.FromSeconds(120),
            $"all {_pending} jobs finish");
        await StopAppsAsync();
        await MeasureAsync(outcome, victim);
        return outcome;
    }

    /// <summary>SIGTERM to every app still running (a supervisor's children stop with it); an exit code other than 0 is noted.</summary>
    public async Task StopAppsAsync()
    {
        foreach (var app in Apps.Where(a => !a.Handle.Process.HasExited))
        {
            Child.Signal(app.Pid, Child.SIGTERM);
        }

        foreach (var app in Apps)
        {
            try
            {
                await app.Handle.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(45));
                bool signalled;
                lock (_signalled)
                {
                    signalled = _signalled.Contains(app.Pid);
                }

                if (app.Handle.Process.ExitCode != 0 && !signalled)
                {
                    Notes.Add($"app {app.Name} exited with {app.Handle.Process.ExitCode} on SIGTERM");
                }
            }
            catch (TimeoutException)
            {
                Notes.Add($"app {app.Name} did not stop within 45 s of SIGTERM (killed)");
                app.Handle.Kill();
            }
        }
    }

    /// <summary>
    /// Overlap from the run log; live processes pruned from the apps' logs (every prune but a stop's, of a process that
    /// was not a victim); jobs charged a worker loss and jobs failed among the <c>bench.sleep</c> jobs; re-runs (jobs
    /// started more than once, the jobs the fault took away excepted).
    /// </summary>
    private async Task MeasureAsync(Outcome outcome, Func<int, bool>? victim)
    {
        var log = Log();
        var runs = RunHistory.Read([("bench", log)], _watch);
        outcome.OverlapSeconds = RunHistory.OverlapMilliseconds(runs) / 1000.0;
        foreach (var overlap in RunHistory.Overlaps(runs).Take(3))
        {
            Notes.Add("overlap: " + overlap);
        }

        var pruned = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Apps.SelectMany(a => a.Handle.Notable))
        {
            var m = PrunedLine().Match(line);
            if (!m.Success || m.Groups["cause"].Value == "stopped")
            {
                continue;
            }

            var pid = int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture);
            if (Victims.Contains(pid) || victim?.Invoke(pid) == true || (AppOf(pid) is { } app && VictimApps.Contains(app)))
            {
                continue;
            }

            pruned.TryAdd(m.Groups["name"].Value, $"{m.Groups["name"].Value} (pid {pid}, {AppOf(pid) ?? "?"}): {m.Groups["cause"].Value}");
        }

        outcome.LivePruned = pruned.Count;
        Notes.AddRange(pruned.Values.Take(5).Select(p => "pruned while alive: " + p));
        outcome.UncausedCharges = await CountAsync("SELECT count(*) FROM keel_jobs WHERE kind = 'bench.sleep' AND worker_losses > 0");
        outcome.CollateralFailures = await CountAsync("SELECT count(*) FROM keel_failed_executions f JOIN keel_jobs j ON j.id = f.job_id WHERE j.kind = 'bench.sleep'");
        outcome.Reruns = log.Where(l => l.What == "start" && !LostJobs.Contains(l.JobId)).GroupBy(l => l.JobId).Count(g => g.Count() > 1);
        outcome.Notes.AddRange(Notes);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await _stop.CancelAsync();
            await _membership;
            await _watch.DisposeAsync();
            var dump = Environment.GetEnvironmentVariable("KEEL_BENCH_APP_OUTPUT");
            foreach (var app in Apps)
            {
                if (!string.IsNullOrEmpty(dump))
                {
                    Directory.CreateDirectory(dump);
                    await File.WriteAllTextAsync(Path.Combine(dump, $"{Path.GetFileName(RunLog)}-{app.Name}.log"), app.Handle.FullOutput);
                }

                app.Handle.Dispose();
            }

            KillLeftovers();
            if (_client is not null)
            {
                try
                {
                    await _client.StopAsync().WaitAsync(TimeSpan.FromSeconds(15));
                }
                catch (Exception e) when (e is TimeoutException || IsTransient(e))
                {
                }

                _client.Dispose();
            }

            List<Func<ValueTask>> cleanups;
            lock (_cleanups)
            {
                cleanups = [.. _cleanups];
            }

            cleanups.Reverse();
            foreach (var cleanup in cleanups)
            {
                try
                {
                    await cleanup();
                }
                catch (Exception e) when (e is TimeoutException || IsTransient(e))
                {
                }
            }

            if (_dropDatabase)
            {
                await _engine.DropDatabaseAsync(Database);
            }
        }
        finally
        {
            try
            {
                Directory.Delete(RunLog, recursive: true);
            }
            catch (IOException)
            {
            }

            _stop.Dispose();
        }
    }

    /// <summary>
    /// For diagnosing a case: <c>KEEL_BENCH_APP_LOG=Information</c> sets the apps' Keel log level and stamps every log
    /// line with the time; <c>KEEL_BENCH_APP_OUTPUT=folder</c> keeps each app's output there (see <see cref="DisposeAsync"/>).
    /// </summary>
    private static string[] DiagnosticArgs()
        => Environment.GetEnvironmentVariable("KEEL_BENCH_APP_LOG") is { Length: > 0 } level
            ? [$"--Logging:LogLevel:Keel={level}", "--Logging:Console:FormatterName=simple", "--Logging:Console:FormatterOptions:TimestampFormat=HH:mm:ss.fff "]
            : [];

    public static bool IsTransient(Exception e)
        => e is Npgsql.NpgsqlException or MySqlConnector.MySqlException or Microsoft.Data.Sqlite.SqliteException or SocketException or IOException or TimeoutException or ObjectDisposedException or InvalidOperationException { InnerException: not null };

    [GeneratedRegex(@"Pruned process (?<name>\S+) \(\d+\): (?<cause>[\w-]+);.*?\(pid (?<pid>\d+)")]
    private static partial Regex PrunedLine();

    /// <summary>Throws when an app the bench did not signal has exited.</summary>
    private void ThrowIfBroken(string what)
    {
        foreach (var app in Apps.Where(a => a.Handle.Process.HasExited))
        {
            lock (_signalled)
            {
                if (_signalled.Contains(app.Pid))
                {
                    continue;
                }
            }

            throw new InvalidOperationException($"app {app.Name} (pid {app.Pid}) exited with {app.Handle.Process.ExitCode} while waiting until {what}; its output:\n{app.Handle.Output}");
        }
    }

    /// <summary>Every 50 ms: which pids are the apps' children (their worker and dispatcher processes).</summary>
    private async Task TrackMembersAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            foreach (var app in Apps.Where(a => !a.Standalone))
            {
                foreach (var child in LocalProcess.ChildrenOf(app.Pid))
                {
                    _members.TryAdd(child, app.Name);
                }
            }

            try
            {
                await Task.Delay(50, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// SIGKILLs any process still running with this scene's run-log folder on its command line, or that wrote to its
    /// run log: by pid, after checking /proc/pid/cmdline, never by name.
    /// </summary>
    private void KillLeftovers()
    {
        var pids = new HashSet<int>(RunLogFiles.Pids(RunLog));
        pids.UnionWith(_members.Keys);
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && Child.IsBenchKeelChild(pid, RunLog))
                {
                    pids.Add(pid);
                }
            }
        }
        catch (IOException)
        {
        }

        foreach (var pid in pids.Where(p => p != Environment.ProcessId && Child.IsAlive(p) && Child.IsBenchKeelChild(p, RunLog)))
        {
            Child.Signal(pid, Child.SIGCONT);
            Child.Signal(pid, Child.SIGKILL);
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

/// <summary>
/// Crash recovery with real processes: a Keel application in process mode (this executable as <c>__app start</c>:
/// a supervisor with two worker child processes of 25 threads and a dispatcher child) runs jobs that sleep 30 s.
/// The bench SIGKILLs the worker process holding the most of them and measures, for each of its jobs, the time from
/// the signal until the job starts again in another process (read from the run log the jobs write, timestamps on the
/// machine's one monotonic clock). Then the same for a worker frozen with SIGSTOP (it is resumed afterwards).
/// Both with Keel's default liveness settings and with the fast ones the process tests use. 25 threads per process
/// (at most ~12 jobs are in flight) leave the surviving process room for every recovered job, so the times measure
/// recovery, not a wait for a free slot or for the replacement process to start.
/// </summary>
public static class Recovery
{
    private const int SleepMilliseconds = 30_000;

    private static readonly Dictionary<string, (string Label, string[] Args)> Variants = new(StringComparer.Ordinal)
    {
        ["defaults"] = ("defaults: heartbeat 5 s, alive threshold 30 s, prune every 5 s", []),
        ["fast"] = ("fast: heartbeat 200 ms, alive threshold 1.2 s, prune every 200 ms",
        [
            "--Keel:HeartbeatInterval=00:00:00.200",
            "--Keel:AliveThreshold=00:00:01.200",
            "--Keel:PruneInterval=00:00:00.200",
        ]),
        ["standalone"] = ("standalone hosts (no supervisor), defaults", []),
    };

    public static async Task<List<Sample>> RunAsync(BenchEngine engine, BenchSettings s)
    {
        string[] variants = s.Smoke ? ["fast"] : s.Recovery switch
        {
            "defaults" => ["defaults", "standalone"],
            "fast" => ["fast"],
            _ => ["defaults", "standalone", "fast"],
        };
        var samples = new List<Sample>();
        foreach (var variant in variants)
        {
            samples.AddRange(await RunVariantAsync(engine, s, variant));
        }

        return samples;
    }

    private static async Task<List<Sample>> RunVariantAsync(BenchEngine engine, BenchSettings s, string variant)
    {
        var (label, extra) = Variants[variant];
        var jobsPerPhase = s.Smoke ? 2 : 6;
        var database = await engine.NewDatabaseAsync();
        var runLog = Directory.CreateTempSubdirectory("keel-bench-runlog-").FullName;
        var apps = new Apps();
        try
        {
            using var client = engine.BuildHost(database, processJobs: false);
            await client.StartAsync(); // migrates, so the app and the bench agree on the schema from the start
            var keel = client.Services.GetRequiredService<IKeelClient>();
            var storage = client.Services.GetRequiredService<IKeelStorage>();
            string[] common =
            [
                $"--Keel:Database={database}",
                $"--Bench:RunLog={runLog}",
                "--Keel:Workers:0:Threads=25",
                "--Keel:ShutdownTimeout=00:00:05",
                "--Logging:LogLevel:Default=Warning",
                .. extra,
            ];

            if (variant == "standalone")
            {
                // Two plain hosts (AddKeel in a generic host, worker and dispatcher in-process), no supervisor: only
                // the survivor's maintenance (or, on PostgreSQL, the dead session) tells that the killed one is gone.
                apps.Add(Child.Start([Child.Host, .. common]));
                apps.Add(Child.Start([Child.Host, .. common]));
                await WaitForWorkersAsync(storage, apps, exclude: null);
                var lost = await InterruptAsync(keel, storage, apps, runLog, jobsPerPhase, Child.SIGKILL);
                await apps.StopAsync();
                await client.StopAsync();
                return
                [
                    new($"{label}: kill -9, job starts again in another process, p50", "ms", Scenarios.Percentile(lost.Times, 0.5)),
                    new($"{label}: kill -9, max", "ms", lost.Times[^1]),
                    new($"{label}: kill -9, jobs in flight in the killed process", "jobs", lost.Times.Length),
                ];
            }

            apps.Add(Child.Start([Child.App, "start", "--Keel:Workers:0:Processes=2", .. common]));
            await WaitForWorkersAsync(storage, apps, exclude: null);

            // kill -9 of a worker process with jobs in flight
            var killed = await InterruptAsync(keel, storage, apps, runLog, jobsPerPhase, Child.SIGKILL);
            await WaitForWorkersAsync(storage, apps, exclude: killed.Pid); // the supervisor replaced it

            // SIGSTOP of a worker process with jobs in flight; resumed once its jobs run elsewhere
            var frozen = await InterruptAsync(keel, storage, apps, runLog, jobsPerPhase, Child.SIGSTOP);

            await apps.StopAsync();
            await client.StopAsync();
            return
            [
                new($"{label}: kill -9, job starts again in another process, p50", "ms", Scenarios.Percentile(killed.Times, 0.5)),
                new($"{label}: kill -9, max", "ms", killed.Times[^1]),
                new($"{label}: kill -9, jobs in flight in the killed process", "jobs", killed.Times.Length),
                new($"{label}: SIGSTOP, job starts again in another process, p50", "ms", Scenarios.Percentile(frozen.Times, 0.5)),
                new($"{label}: SIGSTOP, max", "ms", frozen.Times[^1]),
                new($"{label}: SIGSTOP, jobs in flight in the frozen process", "jobs", frozen.Times.Length),
            ];
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"recovery ({variant}) failed: {e.Message}\nthe app's output:\n{apps.Output}", e);
        }
        finally
        {
            CleanUp(apps, runLog);
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>The app processes the bench started for one variant, and the pids it signalled on purpose.</summary>
    private sealed class Apps
    {
        private readonly List<ChildHandle> _handles = [];

        public HashSet<int> Signalled { get; } = [];

        public IReadOnlyList<ChildHandle> Handles => _handles;

        public string Output => string.Join("\n---\n", _handles.Select(h => h.Output));

        public void Add(ChildHandle handle) => _handles.Add(handle);

        /// <summary>Throws when an app process the bench did not signal has exited.</summary>
        public void ThrowIfBroken(string what)
        {
            foreach (var h in _handles.Where(h => h.Process.HasExited && !Signalled.Contains(h.Process.Id)))
            {
                throw new InvalidOperationException($"app process {h.Process.Id} exited with {h.Process.ExitCode} while waiting until {what}");
            }
        }

        /// <summary>SIGTERM to each app process still running (a supervisor's children stop with it); SIGKILL after 30 s.</summary>
        public async Task StopAsync()
        {
            foreach (var h in _handles.Where(h => !h.Process.HasExited))
            {
                Child.Signal(h.Process.Id, Child.SIGTERM);
            }

            foreach (var h in _handles)
            {
                try
                {
                    await h.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
                }
                catch (TimeoutException)
                {
                    h.Kill();
                }
            }
        }
    }

    /// <summary>
    /// Enqueues <paramref name="count"/> 30 s jobs, waits until they run, sends <paramref name="signal"/> to the worker
    /// process running the most jobs, and returns its pid and, for each of its jobs, ms from the signal until the job
    /// started again in another process (sorted).
    /// </summary>
    private static async Task<(int Pid, double[] Times)> InterruptAsync(IKeelClient keel, IKeelStorage storage, Apps apps, string runLog, int count, int signal)
    {
        var ids = new List<long>();
        for (var i = 0; i < count; i++)
        {
            ids.Add(await keel.EnqueueAsync(JobRequest.Create<SleepJob, SleepArgs>(new SleepArgs(SleepMilliseconds))));
        }

        await WaitUntilAsync(() => ids.All(id => ReadRunLog(runLog).Any(l => l.JobId == id)), TimeSpan.FromSeconds(60), apps, "the jobs start");

        // Every job in flight (this phase's and any earlier one's, each by its latest start) by process.
        var live = (await storage.ProcessesListAsync(new ProcessesListParams(null, null), CancellationToken.None))
            .Where(p => p.Kind == "Worker").Select(p => p.Pid).ToHashSet();
        var inFlight = ReadRunLog(runLog).GroupBy(l => l.JobId).Select(g => g.MaxBy(l => l.At)).Where(l => live.Contains(l.Pid)).ToList();
        var victim = inFlight.GroupBy(l => l.Pid).OrderByDescending(g => g.Count()).First();
        var victimJobs = victim.Select(l => l.JobId).ToHashSet();

        apps.Signalled.Add(victim.Key);
        var signalledAt = Stopwatch.GetTimestamp();
        if (!Child.Signal(victim.Key, signal))
        {
            throw new InvalidOperationException($"could not signal worker pid {victim.Key}");
        }

        try
        {
            var patience = TimeSpan.FromSeconds(120);
            await WaitUntilAsync(
                () =>
                {
                    var log = ReadRunLog(runLog);
                    return victimJobs.All(id => log.Any(l => l.JobId == id && l.Pid != victim.Key && l.At > signalledAt));
                },
                patience,
                apps,
                $"the {victimJobs.Count} jobs of pid {victim.Key} start again elsewhere");
        }
        finally
        {
            if (signal == Child.SIGSTOP)
            {
                Child.Signal(victim.Key, Child.SIGCONT);
            }
        }

        var rerun = ReadRunLog(runLog);
        var times = victimJobs
            .Select(id => rerun.Where(l => l.JobId == id && l.Pid != victim.Key && l.At > signalledAt).Min(l => l.At))
            .Select(at => (at - signalledAt) * 1000.0 / Stopwatch.Frequency)
            .Order()
            .ToArray();
        return (victim.Key, times);
    }

    private static async Task WaitForWorkersAsync(IKeelStorage storage, Apps apps, int? exclude)
        => await WaitUntilAsync(
            async () =>
            {
                var rows = await storage.ProcessesListAsync(new ProcessesListParams(null, null), CancellationToken.None);
                return rows.Count(r => r.Kind == "Worker" && r.Pid != exclude && Child.IsAlive(r.Pid)) == 2 && rows.Any(r => r.Kind == "Dispatcher");
            },
            TimeSpan.FromSeconds(90),
            apps,
            "two worker processes and a dispatcher register");

    private static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, Apps apps, string what)
        => WaitUntilAsync(() => Task.FromResult(condition()), timeout, apps, what);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Apps apps, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            apps.ThrowIfBroken(what);

            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"waited {timeout.TotalSeconds:0} s until {what}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Kills the app processes if still running, then any child that wrote to this run's log or is still running with
    /// this run's log folder on its command line: by pid, after checking /proc/pid/cmdline, never by name.
    /// </summary>
    private static void CleanUp(Apps apps, string runLog)
    {
        foreach (var handle in apps.Handles)
        {
            handle.Dispose();
        }

        var pids = new HashSet<int>();
        try
        {
            foreach (var line in ReadRunLog(runLog))
            {
                pids.Add(line.Pid);
            }

            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && Child.IsBenchKeelChild(pid, runLog))
                {
                    pids.Add(pid);
                }
            }
        }
        catch (IOException)
        {
        }

        foreach (var pid in pids.Where(p => p != Environment.ProcessId && Child.IsAlive(p) && Child.IsBenchKeelChild(p, runLog)))
        {
            Child.Signal(pid, Child.SIGCONT);
            Child.Signal(pid, Child.SIGKILL);
        }

        try
        {
            Directory.Delete(runLog, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The run log: one (job, attempt, pid, Stopwatch timestamp) per job start.</summary>
    private static List<(long JobId, int Attempt, int Pid, long At)> ReadRunLog(string folder)
    {
        var lines = new List<(long JobId, int Attempt, int Pid, long At)>();
        foreach (var file in Directory.EnumerateFiles(folder, "*.log"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is { } line)
            {
                var p = line.Split(' ');
                if (p.Length == 5 && p[0] == "start")
                {
                    lines.Add((long.Parse(p[1], CultureInfo.InvariantCulture), int.Parse(p[2], CultureInfo.InvariantCulture), int.Parse(p[3], CultureInfo.InvariantCulture), long.Parse(p[4], CultureInfo.InvariantCulture)));
                }
            }
        }

        return lines;
    }
}

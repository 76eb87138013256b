using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Keel.Storage;
using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Processes;

/// <summary>
/// The test app (tests/Keel.TestApp) running for real in process mode: a supervisor OS process with worker and
/// dispatcher children. Tests signal its processes by pid and read the outcome from the database and the run log.
/// </summary>
public sealed partial class SupervisedApp : IAsyncDisposable
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    private readonly StringBuilder _output = new();
    private readonly HashSet<int> _seenPids = [];

    private SupervisedApp(TestDatabase db, Process supervisor, string runLog)
    {
        Db = db;
        Supervisor = supervisor;
        RunLogPath = runLog;
    }

    public TestDatabase Db { get; }

    public Process Supervisor { get; }

    public string RunLogPath { get; }

    /// <summary>False when the run-log folder is shared with other apps of the test, which deletes it.</summary>
    public bool OwnsRunLog { get; private init; } = true;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Fast liveness so recovery paths finish within a test: 200 ms heartbeats, a 1.2 s threshold.</summary>
    public static Dictionary<string, string> FastSettings(int workerProcesses = 2, int threads = 4) => new()
    {
        ["Keel:HeartbeatInterval"] = "00:00:00.200",
        ["Keel:AliveThreshold"] = "00:00:01.200",
        ["Keel:PruneInterval"] = "00:00:00.200",
        ["Keel:ShutdownTimeout"] = "00:00:05",
        ["Keel:Workers:0:Processes"] = workerProcesses.ToString(CultureInfo.InvariantCulture),
        ["Keel:Workers:0:Threads"] = threads.ToString(CultureInfo.InvariantCulture),
        ["Keel:Workers:0:PollingInterval"] = "00:00:00.050",
        ["Keel:Dispatcher:PollingInterval"] = "00:00:00.100",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:LogLevel:Keel"] = "Information",
    };

    /// <summary>Starts the app on <paramref name="db"/>, or on <paramref name="database"/> (the same database reached another way: a proxy, a pooler) when set.</summary>
    /// <param name="db">The database.</param>
    /// <param name="settings">Configuration overrides.</param>
    /// <param name="database">The same database reached another way, when set.</param>
    /// <param name="runLog">A run-log folder to share with earlier apps (the caller deletes it); null for one of its own.</param>
    public static async Task<SupervisedApp> StartAsync(TestDatabase db, IDictionary<string, string> settings, string? database = null, string? runLog = null)
    {
        var ownsRunLog = runLog is null;
        runLog ??= Path.Combine(Path.GetTempPath(), "keel-runlog-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(runLog);
        // Through env(1) with SIGINT and SIGQUIT reset to their defaults: a shell that started the test run in the
        // background may have left them ignored, and an ignored signal stays ignored across exec.
        var info = new ProcessStartInfo("/usr/bin/env")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        info.ArgumentList.Add("--default-signal=INT,QUIT");
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Keel.TestApp"));
        info.ArgumentList.Add("start");
        info.ArgumentList.Add($"--Keel:Database={database ?? db.Setting}");
        info.ArgumentList.Add($"--Test:RunLog={runLog}");
        foreach (var (key, value) in settings)
        {
            info.ArgumentList.Add($"--{key}={value}");
        }

        var process = Process.Start(info)!;
        var app = new SupervisedApp(db, process, runLog) { OwnsRunLog = ownsRunLog };
        process.OutputDataReceived += (_, e) => app.Append(e.Data);
        process.ErrorDataReceived += (_, e) => app.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return app;
    }

    public async Task<IReadOnlyList<ProcessInfo>> ProcessesAsync()
    {
        var rows = await Db.Storage.ProcessesListAsync(new ProcessesListParams(null, null), default);
        lock (_seenPids)
        {
            foreach (var row in rows.Where(r => r.Hostname == System.Net.Dns.GetHostName()))
            {
                _seenPids.Add(row.Pid);
            }
        }

        return rows;
    }

    /// <summary>Waits until <paramref name="workers"/> worker rows and a dispatcher row are registered.</summary>
    public async Task<IReadOnlyList<ProcessInfo>> WaitForWorkersAsync(int workers, TimeSpan? timeout = null)
    {
        IReadOnlyList<ProcessInfo> rows = [];
        await Eventually.WaitUntilAsync(
            async () =>
            {
                if (Supervisor.HasExited)
                {
                    throw new InvalidOperationException($"the supervisor exited with {Supervisor.ExitCode}:\n{Output}");
                }

                rows = await ProcessesAsync();
                return rows.Count(r => r.Kind == "Worker") == workers && rows.Any(r => r.Kind == "Dispatcher");
            },
            timeout ?? TimeSpan.FromSeconds(60),
            $"{workers} workers and a dispatcher register");
        return [.. rows.Where(r => r.Kind == "Worker")];
    }

    /// <summary>The run log: one (what, job, attempt, pid, unix ms) per line, ordered by time.</summary>
    public IReadOnlyList<RunLogLine> RunLog() => RunLogFiles.Read(RunLogPath);

    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    /// <summary>True while <paramref name="pid"/> runs (a zombie awaiting its reaper counts as gone).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>SIGTERM to the supervisor; waits for it to exit and returns its exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        Signal(Supervisor.Id, SIGTERM);
        await Supervisor.WaitForExitAsync().WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        return Supervisor.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Supervisor.HasExited)
            {
                Signal(Supervisor.Id, SIGKILL);
                await Supervisor.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (TimeoutException)
        {
        }

        // Children stop on their own when the supervisor's pipe closes; kill any we saw that linger (by pid, never by name).
        int[] pids;
        lock (_seenPids)
        {
            pids = [.. _seenPids, .. RunLogPids()];
        }

        foreach (var pid in pids.Where(p => p != Environment.ProcessId && IsTestApp(p)))
        {
            Signal(pid, SIGCONT);
            Signal(pid, SIGKILL);
        }

        Supervisor.Dispose();
        if (OwnsRunLog)
        {
            try
            {
                Directory.Delete(RunLogPath, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The pids that wrote to the run log (one file each), whether or not a test ever listed their rows.</summary>
    public IReadOnlyList<int> RunLogPids() => RunLogFiles.Pids(RunLogPath);

    private static bool IsTestApp(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains("Keel.TestApp", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}

using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Hangfire;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

/// <summary>
/// The bench's own child processes, started from this same executable:
/// <c>__enqueue keel|hangfire|floor DATABASE WARMUP JOBS</c> enqueues latency jobs one every 20 ms from a process of its own
/// (floor: no Keel, a durable insert and its notification, <see cref="PickupFloor"/>);
/// <c>__app start --Keel:…</c> is a Keel application in process mode (supervisor, whose worker children come back as
/// <c>__keel-child …</c>), running <see cref="SleepJob"/> for the recovery scenario; <c>__host --Keel:…</c> is the same
/// jobs in a plain generic host with AddKeel, no supervisor.
/// </summary>
public static partial class Child
{
    public const string Enqueue = "__enqueue";
    public const string App = "__app";
    public const string Host = "__host";
    public const string Proxy = "__proxy";

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;

    public static bool IsChildCommand(string[] args)
        => args.Length > 0 && args[0] is Enqueue or App or Host or Proxy or KeelApp.ChildCommand;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args[0] == Enqueue)
        {
            return await EnqueueLatencyJobsAsync(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture));
        }

        if (args[0] == Host)
        {
            return await RunPlainHostAsync(args[1..]);
        }

        if (args[0] == Proxy)
        {
            return await RunProxyAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), double.Parse(args[3], CultureInfo.InvariantCulture));
        }

        // __app <KeelApp args> for the supervisor; __keel-child … as KeelApp starts its children.
        return await KeelApp.RunAsync(args[0] == App ? args[1..] : args, builder =>
        {
            RunLogWriter.Folder = builder.Configuration["Bench:RunLog"];
            builder.Services.AddKeel(AddChildJobs);
        });
    }

    /// <summary>The jobs of the apps the bench starts: the recovery scenario's and the no-op job (processes scenario).</summary>
    private static void AddChildJobs(IKeelBuilder keel) => AddRecoveryJobs(keel.AddJob<NoopJob>());

    /// <summary>The recovery scenario's jobs: the sleep (or held) job and the two poison jobs.</summary>
    public static void AddRecoveryJobs(IKeelBuilder keel) => keel.UseSqlite().UsePostgreSql().UseMySql().AddJob<SleepJob>().AddJob<PoisonKillJob>().AddJob<PoisonFailFastJob>();

    /// <summary>A generic host with AddKeel (worker and dispatcher in this process), configured from the arguments.</summary>
    private static async Task<int> RunPlainHostAsync(string[] args)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(args);
        RunLogWriter.Folder = builder.Configuration["Bench:RunLog"];
        builder.Services.AddKeel(AddChildJobs);
        using var host = builder.Build();
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        _ = Task.Run(async () =>
        {
            // Stop when the bench is gone: the stdin pipe from it reaches end-of-file.
            await using var stdin = Console.OpenStandardInput();
            var buffer = new byte[64];
            while (await stdin.ReadAsync(buffer) > 0)
            {
            }

            lifetime.StopApplication();
        });
        await host.RunAsync();
        return 0;
    }

    /// <summary>
    /// <c>__proxy HOST PORT ONE-WAY-MS</c>: a <see cref="Keel.TestInfrastructure.FaultProxy"/> with that latency each way; prints
    /// <c>proxy-port N</c>, then runs until its stdin (a pipe from the bench) reaches end-of-file.
    /// </summary>
    private static async Task<int> RunProxyAsync(string host, int port, double oneWayMs)
    {
        await using var proxy = Keel.TestInfrastructure.FaultProxy.Start(host, port);
        proxy.Latency = TimeSpan.FromMilliseconds(oneWayMs);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ProxyChild.PortMarker}{proxy.Port}"));
        await using var stdin = Console.OpenStandardInput();
        var buffer = new byte[64];
        while (await stdin.ReadAsync(buffer) > 0)
        {
        }

        return 0;
    }

    private static async Task<int> EnqueueLatencyJobsAsync(string system, string database, int warmup, int jobs)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        if (system == PickupFloor.System)
        {
            await PickupFloor.SendAsync(database, warmup, jobs, timer);
            return 0;
        }

        if (system == "hangfire")
        {
            var client = new BackgroundJobClient(HangfireBench.CreateStorage(database, prepareSchema: false));
            for (var i = 0; i < warmup + jobs; i++)
            {
                await timer.WaitForNextTickAsync();
                var timestamp = Stopwatch.GetTimestamp();
                var isWarmup = i < warmup;
                client.Enqueue(() => HangfireJobs.Latency(timestamp, isWarmup));
            }

            return 0;
        }

        using var host = BenchEngine.BuildHost(BenchEngine.EngineOf(database), database, processJobs: false);
        await host.StartAsync();
        var keel = host.Services.GetRequiredService<IKeelClient>();
        for (var i = 0; i < warmup + jobs; i++)
        {
            await timer.WaitForNextTickAsync();
            await keel.EnqueueAsync(JobRequest.Create<LatencyJob, LatencyArgs>(new LatencyArgs(Stopwatch.GetTimestamp(), i < warmup)));
        }

        await host.StopAsync();
        return 0;
    }

    /// <summary>Runs the enqueuer child to completion; throws with its output if it fails.</summary>
    public static async Task RunEnqueuerAsync(string system, string database, int warmup, int jobs)
    {
        using var child = Start([Enqueue, system, database, warmup.ToString(CultureInfo.InvariantCulture), jobs.ToString(CultureInfo.InvariantCulture)]);
        try
        {
            await child.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        }
        catch (TimeoutException)
        {
            child.Kill();
            throw new TimeoutException($"the enqueuer child did not finish within 120 s:\n{child.Output}");
        }

        if (child.Process.ExitCode != 0)
        {
            throw new InvalidOperationException($"the enqueuer child exited with {child.Process.ExitCode}:\n{child.Output}");
        }
    }

    /// <summary>Starts this executable again with <paramref name="args"/>; its output is collected, its stdin is a pipe.</summary>
    public static ChildHandle Start(IEnumerable<string> args)
    {
        var processPath = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this process's executable path");
        // Through env(1) with SIGINT and SIGQUIT reset to their defaults (a background shell may have left them ignored).
        var info = new ProcessStartInfo("/usr/bin/env")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        info.ArgumentList.Add("--default-signal=INT,QUIT");
        info.ArgumentList.Add(processPath);
        if (string.Equals(Path.GetFileNameWithoutExtension(processPath), "dotnet", StringComparison.OrdinalIgnoreCase))
        {
            info.ArgumentList.Add(typeof(Child).Assembly.Location);
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var handle = new ChildHandle(Process.Start(info) ?? throw new InvalidOperationException("could not start a child process"));
        handle.Process.OutputDataReceived += (_, e) => handle.Append(e.Data);
        handle.Process.ErrorDataReceived += (_, e) => handle.Append(e.Data);
        handle.Process.BeginOutputReadLine();
        handle.Process.BeginErrorReadLine();
        return handle;
    }

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

    /// <summary>True when <paramref name="pid"/> is one of this bench's Keel children (checked before any signal at clean-up).</summary>
    public static bool IsBenchKeelChild(int pid, string marker)
    {
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains("Keel.Bench", StringComparison.Ordinal) && cmdline.Contains(marker, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}

/// <summary>A child process this bench started, with its collected output.</summary>
public sealed class ChildHandle(Process process) : IDisposable
{
    /// <summary>Keel's log messages the recovery scenario counts (prunes), kept whole however long the output grows.</summary>
    private static readonly string[] NotableMarkers = ["Pruned process "];

    private readonly StringBuilder _output = new();
    private readonly List<string> _notable = [];

    public Process Process { get; } = process;

    public string Output
    {
        get
        {
            lock (_output)
            {
                var text = _output.ToString();
                return text.Length > 4_000 ? "…" + text[^4_000..] : text;
            }
        }
    }

    /// <summary>The output collected so far (its last 2 MB at most).</summary>
    public string FullOutput
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Every line of the output that carries one of Keel's messages the recovery scenario counts (see <see cref="NotableMarkers"/>).</summary>
    public IReadOnlyList<string> Notable
    {
        get
        {
            lock (_output)
            {
                return [.. _notable];
            }
        }
    }

    public void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
                if (_output.Length > 4_000_000)
                {
                    _output.Remove(0, _output.Length - 2_000_000);
                }

                if (NotableMarkers.Any(m => line.Contains(m, StringComparison.Ordinal)))
                {
                    _notable.Add(line);
                }
            }
        }
    }

    public void Kill()
    {
        try
        {
            if (!Process.HasExited)
            {
                Child.Signal(Process.Id, Child.SIGCONT);
                Child.Signal(Process.Id, Child.SIGKILL);
                Process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        Kill();
        Process.Dispose();
    }
}

/// <summary>A delaying proxy in a child process of the bench (<see cref="Child.Proxy"/>).</summary>
public sealed class ProxyChild : IAsyncDisposable
{
    public const string PortMarker = "proxy-port ";

    private readonly ChildHandle _handle;

    private ProxyChild(ChildHandle handle, int port)
    {
        _handle = handle;
        Port = port;
    }

    /// <summary>The port the proxy listens on (127.0.0.1).</summary>
    public int Port { get; }

    public static async Task<ProxyChild> StartAsync(string targetHost, int targetPort, double oneWayMs)
    {
        var handle = Child.Start([Child.Proxy, targetHost, targetPort.ToString(CultureInfo.InvariantCulture), oneWayMs.ToString("R", CultureInfo.InvariantCulture)]);
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            var output = handle.FullOutput;
            var at = output.IndexOf(PortMarker, StringComparison.Ordinal);
            if (at >= 0)
            {
                var digits = new string([.. output[(at + PortMarker.Length)..].TakeWhile(char.IsAsciiDigit)]);
                if (digits.Length > 0 && output.Length > at + PortMarker.Length + digits.Length)
                {
                    return new ProxyChild(handle, int.Parse(digits, CultureInfo.InvariantCulture));
                }
            }

            if (handle.Process.HasExited)
            {
                break;
            }

            await Task.Delay(20);
        }

        var failure = handle.Output;
        handle.Dispose();
        throw new InvalidOperationException("the proxy child did not report its port:\n" + failure);
    }

    /// <summary>Ends the proxy: its stdin closes, it stops (killed after 10 s).</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            _handle.Process.StandardInput.Close();
            await _handle.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
        {
        }

        _handle.Dispose();
    }
}

using System.Diagnostics;
using System.Globalization;
using Keel.Hosting;
using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Cli;

/// <summary>
/// <c>keel demo</c>: migrates a database, starts a real supervisor with two worker processes, a dispatcher and a
/// scheduler, enqueues quick, slow, flaky, scheduled and recurring jobs plus one that kills its own worker, shows
/// progress and recoveries live, and ends with a summary.
/// </summary>
internal static class Demo
{
    private const string DefaultFile = "keel-demo.db";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(120);

    public static async Task<int> RunAsync(string? database, Action<HostApplicationBuilder> configure, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var folder = Environment.CurrentDirectory;
        var ownFile = Path.Combine(folder, DefaultFile);
        // The database the same way as every command: --database (or --postgres), KEEL_DATABASE, Keel:Database; else a
        // file of the demo's own, which it may delete and recreate. A database it was given it never deletes.
        var fromEnvironment = database is null && DatabaseArgument.Resolve(null) is not null;
        database = DatabaseArgument.Resolve(database) ?? ConfiguredDatabase(configure) ?? ownFile;
        var sqlite = IsSqlite(database);
        var own = sqlite && string.Equals(Path.GetFullPath(database), ownFile, StringComparison.Ordinal);
        if (own)
        {
            foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
            {
                File.Delete(database + suffix);
            }
        }

        var killLog = Path.Combine(Path.GetTempPath(), $"keel-demo-kills-{Environment.ProcessId}.log");
        File.Delete(killLog);
        string[] settings =
        [
            .. fromEnvironment ? Array.Empty<string>() : ["--database", database], // from KEEL_DATABASE: the children inherit it
            "--Keel:Workers:0:Processes=2",
            "--Keel:Workers:0:Threads=5",
            "--Keel:Workers:0:PollingInterval=00:00:00.200",
            "--Keel:Dispatcher:PollingInterval=00:00:00.200",
            "--Keel:HeartbeatInterval=00:00:01",
            "--Keel:AliveThreshold=00:00:05",
            "--Keel:PruneInterval=00:00:01",
            "--Keel:ShutdownTimeout=00:00:05",
            "--Keel:Recurring:demo-tick:Kind=" + DemoJobs.TickKind,
            "--Keel:Recurring:demo-tick:Schedule=*/5 * * * * *",
            "--Keel:Recurring:demo-tick:Args={\"number\":0,\"milliseconds\":0}",
            $"--Demo:KillLog={killLog}",
            "--Logging:LogLevel:Default=Error",
        ];
        var hint = LookAround(own ? DefaultFile : sqlite ? database : null, fromEnvironment, folder, Environment.GetEnvironmentVariable("PATH"), System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name);

        return await CliContext.RunAsync(database, configure, output, error, async context =>
        {
            if (context.Services.GetRequiredService<JobRegistry>().FindByKind(DemoJobs.CrashKind) is null)
            {
                throw new UsageException("this application does not register the demo jobs: run the demo from the keel tool (dotnet run --project src/Keel.Tool -- demo), or call AddDemoJobs()");
            }

            await context.Storage.MigrateAsync(cancellationToken);
            if (!own)
            {
                await RequireDemoOnlyAsync(context, database, cancellationToken);
            }

            await output.WriteLineAsync($"Keel demo on {(sqlite ? "SQLite " + database : "PostgreSQL")}: starting a supervisor with 2 worker processes, a dispatcher and a scheduler…");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var supervisor = Task.Run(() => KeelApp.RunSupervisorAsync(settings, configure, stop.Token), CancellationToken.None);
            int code;
            try
            {
                code = await RunDemoAsync(context, output, killLog, supervisor, cancellationToken);
            }
            finally
            {
                await output.WriteLineAsync("stopping the supervisor and its children…");
                await stop.CancelAsync();
                await supervisor;
                File.Delete(killLog);
            }

            // Last, so the commands to try next are what is left on the screen.
            foreach (var line in hint)
            {
                await output.WriteLineAsync(line);
            }

            return code;
        });
    }

    private static async Task<int> RunDemoAsync(CliContext context, TextWriter output, string killLog, Task supervisor, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while ((await context.Admin.ListProcessesAsync(cancellationToken)).Count(p => p.Kind == "Worker") < 2)
        {
            if (supervisor.IsCompleted || watch.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException("the demo's worker processes did not start");
            }

            await Task.Delay(200, cancellationToken);
        }

        var requests = new List<JobRequest>();
        requests.AddRange(Enumerable.Range(1, 20).Select(i => JobRequest.Create<DemoQuickJob, DemoArgs>(new DemoArgs(i, 50 + (i * 37 % 150)))));
        requests.AddRange(Enumerable.Range(1, 3).Select(i => JobRequest.Create<DemoSlowJob, DemoArgs>(new DemoArgs(i, 3000))));
        requests.AddRange(Enumerable.Range(1, 4).Select(i => JobRequest.Create<DemoFlakyJob, DemoArgs>(new DemoArgs(i, 0))));
        requests.Add(JobRequest.Create<DemoCrashJob, DemoArgs>(new DemoArgs(1, 0)));
        requests.Add(JobRequest.Create<DemoQuickJob, DemoArgs>(new DemoArgs(21, 50), new EnqueueOptions { Delay = TimeSpan.FromSeconds(4) }));
        var ids = await context.Client.EnqueueManyAsync(requests, cancellationToken);
        await output.WriteLineAsync($"enqueued {ids.Count} jobs: 20 quick, 3 slow (3 s), 4 flaky (fail, then retry), 1 scheduled 4 s ahead, 1 that kills its own worker; plus a recurring job every 5 s");

        var reported = new HashSet<long>();
        var recoveries = new List<(long JobId, TimeSpan Took, string Cause)>();
        IReadOnlyList<JobInfo> jobs = [];
        var ticks = 0;
        var lastLine = TimeSpan.Zero;
        while (watch.Elapsed < Deadline && !supervisor.IsCompleted)
        {
            jobs = [.. (await Task.WhenAll(ids.Select(id => context.Client.GetJobAsync(id, cancellationToken)))).Select(j => j!)];
            ticks = (await context.Storage.JobsListAsync(new JobsListParams(null, new JobFilter(Kind: DemoJobs.TickKind), null, null, null, 1000), cancellationToken)).Count;
            foreach (var job in jobs.Where(j => j.Errors.Any(e => e.ExceptionType == WorkerLostCause.ExceptionType) && reported.Add(j.Id)))
            {
                var lost = job.Errors.First(e => e.ExceptionType == WorkerLostCause.ExceptionType);
                var killedAt = KillTime(killLog, lost.OccurredAt);
                var took = killedAt is { } k ? lost.OccurredAt - k : TimeSpan.Zero;
                recoveries.Add((job.Id, took, lost.Message));
                var who = job.Kind == DemoJobs.CrashKind ? $"job {job.Id} killed its own worker process" : $"job {job.Id} was running on that worker";
                await output.WriteLineAsync($"  ⚡ {who}; Keel recovered it {took.TotalMilliseconds:0} ms after the kill and put it back to ready ({lost.Message})");
            }

            var done = jobs.All(j => j.State is JobState.Finished or JobState.Failed) && ticks >= 2;
            if (done || watch.Elapsed - lastLine >= TimeSpan.FromSeconds(1))
            {
                lastLine = watch.Elapsed;
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"[{watch.Elapsed.TotalSeconds,5:0.0}s] ready {Count(jobs, JobState.Ready)} | in progress {Count(jobs, JobState.Claimed)} | scheduled {Count(jobs, JobState.Scheduled)} | finished {Count(jobs, JobState.Finished)} | failed {Count(jobs, JobState.Failed)} | retried {jobs.Count(j => j.Attempts > 1)} | recovered {recoveries.Count} | recurring runs {ticks}"));
            }

            if (done)
            {
                break;
            }

            await Task.Delay(250, cancellationToken);
        }

        var finished = Count(jobs, JobState.Finished);
        await output.WriteLineAsync();
        await output.WriteLineAsync($"Summary after {watch.Elapsed.TotalSeconds:0.0}s: {finished} of {ids.Count} jobs finished, {Count(jobs, JobState.Failed)} failed, {jobs.Count(j => j.Attempts > 1)} retried, {recoveries.Count} recovered from a killed worker, {ticks} recurring runs.");
        foreach (var (jobId, took, _) in recoveries)
        {
            await output.WriteLineAsync($"  job {jobId}: back to ready {took.TotalMilliseconds:0} ms after its worker was killed");
        }

        return finished == ids.Count && recoveries.Count >= 1 && ticks >= 2 ? ExitCodes.Success : ExitCodes.Failure;
    }

    /// <summary>Keel:Database from the application's configuration (appsettings.json in the current folder…), if set.</summary>
    private static string? ConfiguredDatabase(Action<HostApplicationBuilder> configure)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = Environment.CurrentDirectory });
        configure(builder);
        return builder.Configuration[$"{KeelOptions.SectionName}:{nameof(KeelOptions.Database)}"] is { Length: > 0 } configured && !string.IsNullOrWhiteSpace(configured) ? configured : null;
    }

    /// <summary>
    /// A database the demo was given must hold nothing but demo jobs and have no Keel process running on it: the demo's
    /// workers would claim another application's jobs and fail them as unknown kinds, and its workers would take ours.
    /// </summary>
    private static async Task RequireDemoOnlyAsync(CliContext context, string database, CancellationToken cancellationToken)
    {
        const int Cap = 100_000;
        var counts = await context.Storage.JobsCountAsync(new JobsCountParams(Cap), cancellationToken);
        var total = Enum.GetValues<JobState>().Sum(counts.Of);
        long demo = 0;
        foreach (var kind in DemoJobs.Kinds)
        {
            demo += (await context.Storage.JobsListAsync(new JobsListParams(null, new JobFilter(Kind: kind), null, null, null, Cap + 1), cancellationToken)).Count;
        }

        var processes = await context.Admin.ListProcessesAsync(cancellationToken);
        if (total > demo || processes.Any(p => p.HeartbeatAge < context.Options.AliveThreshold))
        {
            throw new UsageException($"the demo runs its own workers, so it needs a database of its own, and {DatabaseArgument.Redact(database)} {(total > demo ? "holds other jobs" : "has Keel processes running on it")}: run it without --database, KEEL_DATABASE or Keel:Database to use ./{DefaultFile}");
        }
    }

    /// <summary>
    /// The closing lines: commands to look around with that work where the demo ran — the installed tool when <c>keel</c>
    /// is on PATH; <c>dotnet run --project src/Keel.Tool --</c> from a clone; <c>dotnet run --</c> in an application of one's
    /// own; else the tool's name and how to install it.
    /// </summary>
    internal static IReadOnlyList<string> LookAround(string? sqlitePath, bool fromEnvironment, string folder, string? path, string? entryAssembly)
    {
        var onPath = (path ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Any(d => File.Exists(Path.Combine(d, "keel")));
        string prefix;
        string? note = null;
        if (entryAssembly is not null && entryAssembly != "Keel.Tool")
        {
            prefix = "dotnet run --";
        }
        else if (onPath)
        {
            prefix = "keel";
        }
        else if (File.Exists(Path.Combine(folder, "src", "Keel.Tool", "Keel.Tool.csproj")))
        {
            prefix = "dotnet run --project src/Keel.Tool --";
        }
        else
        {
            prefix = "keel";
            note = "keel is not on PATH: from a clone of Keel run `dotnet run --project src/Keel.Tool --` instead, or install the tool (docs/cli.md): dotnet pack src/Keel.Tool -c Release -o ./artifacts && dotnet tool install --global Keel.Tool --add-source ./artifacts";
        }

        var database = fromEnvironment ? string.Empty
            : sqlitePath is null ? " -d \"<connection string>\""
            : " -d " + (sqlitePath.Contains(' ', StringComparison.Ordinal) ? $"\"{sqlitePath}\"" : sqlitePath);
        var lines = new List<string> { "Look around:" };
        lines.AddRange(new[] { "status", "jobs list", "jobs show <id>", "dashboard" }.Select(command => $"  {prefix} {command}{database}"));
        if (note is not null)
        {
            lines.Add("(" + note + ")");
        }

        return lines;
    }

    private static int Count(IReadOnlyList<JobInfo> jobs, JobState state) => jobs.Count(j => j.State == state);

    /// <summary>The last kill the crash job recorded before <paramref name="recoveredAt"/>: every job of that worker died with it.</summary>
    private static DateTimeOffset? KillTime(string killLog, DateTimeOffset recoveredAt)
    {
        if (!File.Exists(killLog))
        {
            return null;
        }

        return File.ReadAllLines(killLog)
            .Select(line => line.Split(' '))
            .Where(parts => parts.Length == 2)
            .Select(parts => DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(parts[1], CultureInfo.InvariantCulture)))
            .Where(at => at <= recoveredAt.AddMilliseconds(5))
            .Select(at => (DateTimeOffset?)at)
            .LastOrDefault();
    }

    /// <summary>Whether the demo's database is a SQLite file; a setting that names no engine fails later, when it is opened, with its message.</summary>
    private static bool IsSqlite(string database)
    {
        try
        {
            return KeelDatabaseSetting.Parse(database, []).Engine == "sqlite";
        }
        catch (KeelDatabaseSettingException)
        {
            return false;
        }
    }
}

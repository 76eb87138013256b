using System.Diagnostics;
using System.Globalization;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

/// <summary>
/// Throughput of real Keel processes: a process-mode app (<c>KeelApp … start</c>: a supervisor, its worker processes
/// and a dispatcher process) with 1, 2 and 4 worker processes, and two standalone hosts (a generic host with AddKeel
/// each, no supervisor), every worker at <c>--threads</c> threads. The apps start on an empty database and register;
/// then the bench enqueues every no-op job in one transaction, and the clock runs from its commit until nothing is
/// ready or claimed. CPU per job counts the bench's whole process tree (the apps are its children) and PostgreSQL's.
/// </summary>
public static class ProcessesScenario
{
    private static readonly TimeSpan RegisterPatience = TimeSpan.FromSeconds(90);

    public static async Task<List<Sample>> RunAsync(BenchEngine engine, BenchSettings s)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 200 : 20_000);
        (string Label, int Apps, int Processes, bool Standalone)[] setups = s.Smoke
            ? [("process mode, 2 worker processes", 1, 2, false)]
            :
            [
                ("process mode, 1 worker process", 1, 1, false),
                ("process mode, 2 worker processes", 1, 2, false),
                ("process mode, 4 worker processes", 1, 4, false),
                ("2 standalone hosts", 2, 1, true),
            ];
        var samples = new List<Sample>();
        foreach (var (label, apps, processes, standalone) in setups)
        {
            var (rate, cost) = await DrainAsync(engine, s, jobs, apps, processes, standalone);
            var name = $"{label} x {s.Threads} threads, {jobs:N0} no-op jobs";
            samples.Add(new(name, "jobs/s", rate));
            samples.AddRange(cost.PerJob(label, jobs, engine.Server is not null));
        }

        return samples;
    }

    private static async Task<(double Rate, WorkCost Cost)> DrainAsync(BenchEngine engine, BenchSettings s, int jobs, int apps, int processes, bool standalone)
    {
        var database = await engine.NewDatabaseAsync();
        var started = new List<ChildHandle>();
        try
        {
            using var client = engine.BuildHost(database, processJobs: false);
            await client.StartAsync(); // migrates before any app starts
            var storage = client.Services.GetRequiredService<IKeelStorage>();
            var keel = client.Services.GetRequiredService<IKeelClient>();
            string[] common =
            [
                $"--Keel:Database={database}",
                string.Create(CultureInfo.InvariantCulture, $"--Keel:Workers:0:Threads={s.Threads}"),
                "--Keel:ShutdownTimeout=00:00:10",
                "--Logging:LogLevel:Default=Warning",
            ];
            for (var i = 0; i < apps; i++)
            {
                started.Add(standalone
                    ? Child.Start([Child.Host, .. common])
                    : Child.Start([Child.App, "start", string.Create(CultureInfo.InvariantCulture, $"--Keel:Workers:0:Processes={processes}"), .. common]));
            }

            var workers = apps * processes;
            var registering = Stopwatch.StartNew();
            while ((await storage.ProcessesListAsync(new ProcessesListParams(null, null), CancellationToken.None)).Count(p => p.Kind == "Worker") < workers)
            {
                if (registering.Elapsed > RegisterPatience || started.Any(c => c.Process.HasExited))
                {
                    throw new InvalidOperationException($"the apps did not register {workers} worker(s) within {RegisterPatience.TotalSeconds:0} s:\n" + string.Join("\n---\n", started.Select(c => c.Output)));
                }

                await Task.Delay(100);
            }

            await Task.Delay(s.Smoke ? 200 : 1_000); // let the apps finish starting (JIT, pools) before the clock runs
            var requests = Enumerable.Range(0, jobs).Select(i => JobRequest.Create<NoopJob, NoopArgs>(new NoopArgs(i))).ToList();
            var postmaster = engine.Server?.PostmasterPid ?? 0;
            var postgres = engine as PostgresEngine;
            var countersBefore = postgres is null ? null : await postgres.CountersAsync(database);
            var cpuBefore = ProcessCpu.Read(postmaster);
            await keel.EnqueueManyAsync(requests);
            var watch = Stopwatch.StartNew(); // from the commit: the jobs are invisible before it
            var lastLeft = long.MaxValue;
            var lastProgress = watch.Elapsed;
            while (true)
            {
                var queues = await storage.QueuesListAsync(null, CancellationToken.None);
                if (queues.Sum(q => q.Failed) > 0)
                {
                    throw new InvalidOperationException("some no-op jobs failed");
                }

                var left = queues.Sum(q => q.Ready + q.Claimed + q.Scheduled + q.Blocked);
                if (left == 0)
                {
                    break;
                }

                if (left < lastLeft)
                {
                    (lastLeft, lastProgress) = (left, watch.Elapsed);
                }
                else if (watch.Elapsed - lastProgress > TimeSpan.FromSeconds(60) || started.Any(c => c.Process.HasExited))
                {
                    throw new TimeoutException($"{left:N0} of {jobs:N0} jobs left, no progress for 60 s or an app exited:\n" + string.Join("\n---\n", started.Select(c => c.Output)));
                }

                await Task.Delay(20);
            }

            var elapsed = watch.Elapsed;
            var cpuAfter = ProcessCpu.Read(postmaster);
            await StopAsync(started);
            await client.StopAsync();
            client.Dispose(); // closes the store's own pool: its backends exit and report their counters
            PostgresCounters? counters = null;
            if (postgres is not null && countersBefore is not null)
            {
                // The enqueue's own statements and rows are in these: the bulk insert is counted with the jobs.
                await postgres.SettleAsync(database);
                counters = (await postgres.SettledCountersAsync(database)).Minus(countersBefore);
            }

            return (jobs / elapsed.TotalSeconds, new WorkCost(cpuAfter.Bench - cpuBefore.Bench, cpuAfter.Postgres - cpuBefore.Postgres, counters));
        }
        finally
        {
            foreach (var child in started)
            {
                child.Dispose(); // kills what did not stop
            }

            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>SIGTERM to each app (a supervisor stops its children), then up to 30 s for them to exit.</summary>
    private static async Task StopAsync(IEnumerable<ChildHandle> apps)
    {
        foreach (var app in apps)
        {
            Child.Signal(app.Process.Id, Child.SIGTERM);
        }

        foreach (var app in apps)
        {
            await app.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }
}

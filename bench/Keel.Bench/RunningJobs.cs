using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

public sealed record ProbeArgs(int N);

/// <summary>Waits for its token and records, per job, the Stopwatch timestamp at which it fired.</summary>
[Job("bench.cancel-probe")]
public sealed class CancelProbeJob : IJob<ProbeArgs>
{
    public static ConcurrentDictionary<long, long> Fired { get; } = new();

    public static ConcurrentDictionary<long, bool> Started { get; } = new();

    public async Task PerformAsync(ProbeArgs args, JobContext context, CancellationToken cancellationToken)
    {
        using var fired = cancellationToken.Register(() => Fired[context.JobId] = Stopwatch.GetTimestamp());
        Started[context.JobId] = true;
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }
}

/// <summary>Reports progress every 10 ms (with <see cref="ProgressArgs.Report"/>) or only sleeps as long, until cancelled.</summary>
[Job("bench.progress")]
public sealed class ProgressJob : IJob<ProgressArgs>
{
    public static long Calls;

    public async Task PerformAsync(ProgressArgs args, JobContext context, CancellationToken cancellationToken)
    {
        var i = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (args.Report)
            {
                await context.ReportProgressAsync((i++ % 1000) / 1000.0, "working", cancellationToken);
                Interlocked.Increment(ref Calls);
            }

            try
            {
                await Task.Delay(10, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}

public sealed record ProgressArgs(bool Report);

/// <summary>
/// The running-jobs scenarios (docs/running-jobs.md): how long a cancel takes to reach its run, and what progress
/// reporting costs the throughput of the jobs beside it.
/// </summary>
public static class RunningJobs
{
    /// <summary>
    /// Cancel → token fired, per cancel: a worker host runs probe jobs that wait on their token; a second host in the same
    /// OS process (its own DI container, so no in-process wake-up: the request reaches the worker through the database —
    /// its poll on SQLite and MariaDB, NOTIFY on PostgreSQL) cancels them one at a time.
    /// </summary>
    public static async Task<List<Sample>> CancelAsync(BenchEngine engine, BenchSettings s)
    {
        var cancels = s.Jobs ?? (s.Smoke ? 10 : 100);
        CancelProbeJob.Started.Clear(); // job ids start over in every database
        CancelProbeJob.Fired.Clear();
        var database = await engine.NewDatabaseAsync();
        try
        {
            using var worker = engine.BuildHost(database, processJobs: true, workers: 1, threads: 4);
            using var operator_ = engine.BuildHost(database, processJobs: false);
            await worker.StartAsync();
            await operator_.StartAsync();
            var client = operator_.Services.GetRequiredService<IKeelClient>();
            var admin = operator_.Services.GetRequiredService<IKeelAdmin>();
            var times = new List<double>(cancels);
            for (var i = 0; i < cancels; i++)
            {
                var id = await client.EnqueueAsync(JobRequest.Create<CancelProbeJob, ProbeArgs>(new ProbeArgs(i)));
                await WaitAsync(() => CancelProbeJob.Started.ContainsKey(id), "a probe job to start");
                await Task.Delay(Random.Shared.Next(0, 500)); // cancels land anywhere in the worker's poll interval
                var requested = Stopwatch.GetTimestamp();
                if (await admin.CancelAsync(id, "bench") != CancelResult.Requested)
                {
                    throw new InvalidOperationException($"job {id} was not running when cancelled");
                }

                await WaitAsync(() => CancelProbeJob.Fired.ContainsKey(id), "a cancel to reach its run");
                times.Add(Stopwatch.GetElapsedTime(requested, CancelProbeJob.Fired[id]).TotalMilliseconds);
            }

            await operator_.StopAsync();
            await worker.StopAsync();
            var sorted = times.Order().ToArray();
            return
            [
                new($"cancel -> token fired p50 ({cancels} cancels from another host)", "ms", Scenarios.Percentile(sorted, 0.50)),
                new("cancel -> token fired p99", "ms", Scenarios.Percentile(sorted, 0.99)),
                new("cancel -> token fired max", "ms", sorted[^1]),
            ];
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>
    /// Throughput of no-op jobs beside 10 long jobs that each report progress every 10 ms (about 1,000 calls a second
    /// in all, coalesced by Keel to a write a second per job), against the same 10 jobs sleeping as long without
    /// reporting: the cost of progress reporting to the work around it.
    /// </summary>
    private static int _progressRuns;

    public static async Task<List<Sample>> ProgressCostAsync(BenchEngine engine, BenchSettings s)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 500 : 10_000);

        // The arms take turns going first: whichever runs first in a run pays for what the machine was doing before
        // (a dropped database's files, a checkpoint), which was larger than the effect measured.
        var reportFirst = Interlocked.Increment(ref _progressRuns) % 2 == 0;
        Interlocked.Exchange(ref ProgressJob.Calls, 0);
        var (reporting, calls) = reportFirst ? await DrainBesideAsync(engine, s, jobs, report: true) : default;
        var quiet = await DrainBesideAsync(engine, s, jobs, report: false);
        if (!reportFirst)
        {
            Interlocked.Exchange(ref ProgressJob.Calls, 0);
            (reporting, calls) = await DrainBesideAsync(engine, s, jobs, report: true);
        }

        return
        [
            new($"{jobs:N0} no-op jobs beside 10 sleeping jobs", "jobs/s", quiet.Rate),
            new("… beside 10 jobs reporting progress", "jobs/s", reporting),
            new("… progress calls made meanwhile", "calls/s", calls),
            new("… throughput lost to progress reporting", "%", 100 * (quiet.Rate - reporting) / quiet.Rate),
        ];
    }

    private static async Task<(double Rate, double CallsPerSecond)> DrainBesideAsync(BenchEngine engine, BenchSettings s, int jobs, bool report)
    {
        var database = await engine.NewDatabaseAsync();
        try
        {
            Counters.Reset();
            using var host = engine.BuildHost(database, processJobs: true, s.Workers, s.Threads + 10);
            await host.StartAsync();
            var client = host.Services.GetRequiredService<IKeelClient>();
            var admin = host.Services.GetRequiredService<IKeelAdmin>();
            var longJobs = await client.EnqueueManyAsync([.. Enumerable.Range(0, 10).Select(_ => JobRequest.Create<ProgressJob, ProgressArgs>(new ProgressArgs(report)))]);
            await WaitAsync(() => admin.ListClaimsAsync().GetAwaiter().GetResult().Count == 10, "the 10 long jobs to start");
            var callsBefore = Interlocked.Read(ref ProgressJob.Calls);
            var watch = Stopwatch.StartNew();
            for (var done = 0; done < jobs; done += 1_000)
            {
                await client.EnqueueManyAsync([.. Enumerable.Range(done, Math.Min(1_000, jobs - done)).Select(i => JobRequest.Create<NoopJob, NoopArgs>(new NoopArgs(i)))]);
            }

            await Scenarios.WaitForPerformedAsync(jobs, "progress cost");
            var elapsed = watch.Elapsed;
            var calls = Interlocked.Read(ref ProgressJob.Calls) - callsBefore;
            foreach (var id in longJobs)
            {
                await admin.CancelAsync(id, "bench over");
            }

            await host.StopAsync();
            return (jobs / elapsed.TotalSeconds, calls / elapsed.TotalSeconds);
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"waited 60 s for {what}");
            }

            await Task.Delay(1);
        }
    }
}

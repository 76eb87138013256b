using System.Diagnostics;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

/// <summary>What one run of a scenario measured: metric name → value (with its unit in the name's table entry).</summary>
public sealed record Sample(string Metric, string Unit, double Value);

public sealed record BenchSettings(int? Jobs, int Workers, int Threads, int Runs, bool Smoke, bool Big);

public static class Scenarios
{
    public static readonly string[] All = ["enqueue", "throughput", "latency", "backlog"];

    public static Task<List<Sample>> RunOnceAsync(string scenario, BenchEngine engine, BenchSettings s) => scenario switch
    {
        "enqueue" => EnqueueAsync(engine, s),
        "throughput" => ThroughputAsync(engine, s),
        "latency" => LatencyAsync(engine, s),
        "backlog" => BacklogAsync(engine, s),
        _ => throw new ArgumentException($"unknown scenario '{scenario}'"),
    };

    private static JobRequest Noop(int i) => JobRequest.Create<NoopJob, NoopArgs>(new NoopArgs(i));

    /// <summary>One by one (single client), concurrent (8 tasks), bulk (batches of 1,000).</summary>
    private static async Task<List<Sample>> EnqueueAsync(BenchEngine engine, BenchSettings s)
    {
        var single = s.Jobs ?? (s.Smoke ? 200 : 2_000);
        var bulk = s.Smoke ? 2_000 : (s.Jobs ?? 2_000) * 10;
        var database = await engine.NewDatabaseAsync();
        try
        {
            using var host = engine.BuildHost(database, processJobs: false);
            await host.StartAsync();
            var client = host.Services.GetRequiredService<IKeelClient>();
            for (var i = 0; i < 50; i++)
            {
                await client.EnqueueAsync(Noop(i)); // warm-up: JIT, connection pool
            }

            var samples = new List<Sample>();
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < single; i++)
            {
                await client.EnqueueAsync(Noop(i));
            }

            samples.Add(new($"one by one, 1 client ({single:N0})", "jobs/s", single / watch.Elapsed.TotalSeconds));

            const int tasks = 8;
            var perTask = single / tasks;
            watch.Restart();
            await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
            {
                for (var i = 0; i < perTask; i++)
                {
                    await client.EnqueueAsync(Noop(i));
                }
            })));
            samples.Add(new($"one by one, {tasks} tasks ({perTask * tasks:N0})", "jobs/s", perTask * tasks / watch.Elapsed.TotalSeconds));

            var requests = Enumerable.Range(0, 1_000).Select(Noop).ToList();
            watch.Restart();
            for (var done = 0; done < bulk; done += 1_000)
            {
                await client.EnqueueManyAsync(requests);
            }

            samples.Add(new($"bulk, batches of 1,000 ({bulk:N0})", "jobs/s", bulk / watch.Elapsed.TotalSeconds));
            await host.StopAsync();
            return samples;
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    private static async Task<List<Sample>> ThroughputAsync(BenchEngine engine, BenchSettings s)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 200 : 20_000);
        var rate = await DrainAsync(engine, s, jobs);
        return [new($"{jobs:N0} no-op jobs, {s.Workers} worker(s) x {s.Threads} threads", "jobs/s", rate)];
    }

    private static async Task<List<Sample>> BacklogAsync(BenchEngine engine, BenchSettings s)
    {
        int[] sizes = s.Smoke ? [200, 2_000] : s.Big ? [10_000, 100_000, 1_000_000] : [10_000, 100_000];
        var samples = new List<Sample>();
        foreach (var size in sizes)
        {
            var rate = await DrainAsync(engine, s, size);
            samples.Add(new($"{size:N0} waiting, {s.Workers} worker(s) x {s.Threads} threads", "jobs/s", rate));
        }

        for (var i = 1; i < sizes.Length; i++)
        {
            samples.Add(new($"ratio {sizes[i]:N0} / {sizes[0]:N0}", "x", samples[i].Value / samples[0].Value));
        }

        return samples;
    }

    /// <summary>
    /// Bulk-enqueues <paramref name="jobs"/> no-op jobs into a fresh database, then starts a worker host and returns
    /// jobs/s from its start until every job is finished in the database (the jobs' own counter is polled every 50 ms;
    /// once it reaches the total, the database is polled until nothing is ready or claimed).
    /// </summary>
    private static async Task<double> DrainAsync(BenchEngine engine, BenchSettings s, int jobs)
    {
        var database = await engine.NewDatabaseAsync();
        try
        {
            using (var client = engine.BuildHost(database, processJobs: false))
            {
                await client.StartAsync();
                var keel = client.Services.GetRequiredService<IKeelClient>();
                for (var done = 0; done < jobs; done += 1_000)
                {
                    var batch = Math.Min(1_000, jobs - done);
                    await keel.EnqueueManyAsync(Enumerable.Range(done, batch).Select(Noop).ToList());
                }

                await client.StopAsync();
            }

            Counters.Reset();
            using var host = engine.BuildHost(database, processJobs: true, s.Workers, s.Threads);
            var storage = host.Services.GetRequiredService<IKeelStorage>();
            var watch = Stopwatch.StartNew();
            await host.StartAsync();
            var last = 0L;
            var lastProgress = watch.Elapsed;
            while (Interlocked.Read(ref Counters.Performed) < jobs)
            {
                await Task.Delay(50);
                var now = Interlocked.Read(ref Counters.Performed);
                if (now != last)
                {
                    last = now;
                    lastProgress = watch.Elapsed;
                }
                else if (watch.Elapsed - lastProgress > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException($"no progress for 60 s: {now:N0} of {jobs:N0} jobs performed");
                }
            }

            while (true)
            {
                var queues = await storage.QueuesListAsync(null, CancellationToken.None);
                if (queues.Sum(q => q.Failed) > 0)
                {
                    throw new InvalidOperationException("some no-op jobs failed");
                }

                if (queues.Sum(q => q.Ready + q.Claimed + q.Scheduled + q.Blocked) == 0)
                {
                    break;
                }

                if (watch.Elapsed - lastProgress > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException("jobs performed but not all recorded finished within 60 s");
                }

                await Task.Delay(50);
            }

            var elapsed = watch.Elapsed;
            await host.StopAsync();
            return jobs / elapsed.TotalSeconds;
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>An idle host; the bench enqueues one job every 20 ms (same process) and each job records enqueue→start.</summary>
    private static async Task<List<Sample>> LatencyAsync(BenchEngine engine, BenchSettings s)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 50 : 500);
        var database = await engine.NewDatabaseAsync();
        try
        {
            Counters.Reset();
            using var host = engine.BuildHost(database, processJobs: true, s.Workers, s.Threads);
            await host.StartAsync();
            var client = host.Services.GetRequiredService<IKeelClient>();
            await Task.Delay(s.Smoke ? 200 : 1_000);
            const int warmup = 20;
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            for (var i = 0; i < warmup + jobs; i++)
            {
                await timer.WaitForNextTickAsync();
                await client.EnqueueAsync(JobRequest.Create<LatencyJob, LatencyArgs>(new LatencyArgs(Stopwatch.GetTimestamp(), i < warmup)));
            }

            var deadline = Stopwatch.StartNew();
            while (Interlocked.Read(ref Counters.Performed) < warmup + jobs)
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException($"only {Counters.Performed} of {warmup + jobs} latency jobs started");
                }

                await Task.Delay(50);
            }

            await host.StopAsync();
            var sorted = Counters.Latencies.Order().ToArray();
            return
            [
                new($"enqueue->start p50 ({jobs} jobs at ~50/s)", "ms", Percentile(sorted, 0.50)),
                new("enqueue->start p95", "ms", Percentile(sorted, 0.95)),
                new("enqueue->start p99", "ms", Percentile(sorted, 0.99)),
                new("enqueue->start max", "ms", sorted[^1]),
            ];
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    public static double Percentile(double[] sorted, double p)
    {
        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

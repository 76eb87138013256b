using System.Globalization;
using System.Diagnostics;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Bench;

/// <summary>What one run of a scenario measured: metric name → value (with its unit in the name's table entry).</summary>
public sealed record Sample(string Metric, string Unit, double Value)
{
    /// <summary>The row of a scenario's own table (recovery: case and settings), when it prints one.</summary>
    public string? Row { get; init; }

    /// <summary>The column of that table.</summary>
    public string? Column { get; init; }
}

/// <summary>The command line's settings. <paramref name="Recovery"/> is <c>--recovery</c> as given (null: not given).</summary>
/// <paramref name="Rtts"/>: the round trips (ms) the throughput scenario adds between the workers and PostgreSQL, 0 for none.
/// <paramref name="ShowStatements"/>: print the statements PostgreSQL ran most during each drain.
/// <paramref name="Variants"/>: the throughput scenario's A/B arms, each Npgsql connection-string settings added for the workers ("" = as is).
public sealed record BenchSettings(int? Jobs, int Workers, int Threads, int Runs, bool Smoke, bool Big, int[]? Backlog = null, string? Recovery = null)
{
    public double[] Rtts { get; init; } = [0];

    public bool ShowStatements { get; init; }

    public string[] Variants { get; init; } = [""];
}

public static class Scenarios
{
    public static readonly string[] All = ["enqueue", "throughput", "latency", "backlog", "batch", "hangfire", "recovery", "processes", "cancel", "progress"];

    /// <summary>Why <paramref name="scenario"/> does not run on <paramref name="engine"/>; null when it runs.</summary>
    public static string? Unsupported(string scenario, BenchEngine engine, BenchSettings s) => scenario switch
    {
        "hangfire" when !engine.IsPostgres => "Hangfire is measured on PostgreSQL only",
        "backlog" when engine.IsMySql && s.Smoke => "the smoke run keeps MariaDB to enqueue, throughput and latency; run it without --smoke",
        "batch" when engine.IsMySql && s.Smoke => "the smoke run keeps MariaDB to enqueue, throughput and latency; run it without --smoke",
        "recovery" when engine.IsMySql && s.Smoke && s.Recovery is null => "the smoke run keeps MariaDB to enqueue, throughput and latency; run it without --smoke",
        "processes" when engine.IsMySql && s.Smoke => "the smoke run keeps MariaDB to enqueue, throughput and latency; run it without --smoke",
        "throughput" when (s.Rtts.Any(r => r > 0) || s.Variants.Any(v => SplitVariant(v).Npgsql.Length > 0)) && !engine.IsPostgres => "--rtt and Npgsql --variants are PostgreSQL's",
        "latency" when s.Variants.Any(v => v.Length > 0 && (SplitVariant(v) is not (null, _, "")))
            => "latency's --variants take DirectHandOff=true|false only",
        _ => null,
    };

    public static Task<List<Sample>> RunOnceAsync(string scenario, BenchEngine engine, BenchSettings s) => scenario switch
    {
        "enqueue" => EnqueueAsync(engine, s),
        "throughput" => ThroughputAsync(engine, s),
        "latency" => LatencyAsync(engine, s),
        "backlog" => BacklogAsync(engine, s),
        "batch" => BatchAsync(engine, s),
        "hangfire" => HangfireAsync(engine, s),
        "recovery" => Recovery.RunAsync(engine, s),
        "processes" => ProcessesScenario.RunAsync(engine, s),
        "cancel" => RunningJobs.CancelAsync(engine, s),
        "progress" => RunningJobs.ProgressCostAsync(engine, s),
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
        var samples = new List<Sample>();
        foreach (var variant in s.Variants)
        {
            var loopback = 0.0;
            var named = variant.Length == 0 ? "" : $" [{variant}]";
            foreach (var rtt in s.Rtts)
            {
                var label = rtt == 0
                    ? $"{jobs:N0} no-op jobs, {s.Workers} worker(s) x {s.Threads} threads{named}"
                    : $"{jobs:N0} no-op jobs, {s.Workers} worker(s) x {s.Threads} threads, rtt +{rtt:0.###} ms{named}";
                var (rate, cost) = await DrainAsync(engine, s, jobs, rtt: rtt, variant: variant);
                samples.Add(new(label, "jobs/s", rate));
                if (rtt == 0)
                {
                    loopback = rate;
                }
                else if (loopback > 0)
                {
                    samples.Add(new(label + " / loopback", "x", rate / loopback));
                }

                if (cost is not null)
                {
                    // Through the proxy its pumps run in the bench process too: its CPU is the network's, not Keel's.
                    samples.AddRange(cost.PerJob((rtt == 0 ? "drain" : $"drain at rtt +{rtt:0.###} ms (proxy's CPU included)") + named, jobs, engine.Server is not null));
                }
            }
        }

        return samples;
    }

    /// <summary>
    /// Drains each backlog size in a fresh database, timing every claim round trip of the worker (a claim alone, or a
    /// completion batch and the claim after it in one round trip) through a decorated store: how long a claim takes
    /// with that many jobs waiting, and how many jobs it brings.
    /// </summary>
    private static async Task<List<Sample>> BacklogAsync(BenchEngine engine, BenchSettings s)
    {
        int[] sizes = s.Backlog ?? (s.Smoke ? [200, 2_000] : s.Big ? [10_000, 100_000, 1_000_000] : [10_000, 100_000]);
        var samples = new List<Sample>();
        var rates = new List<double>();
        foreach (var size in sizes)
        {
            var claims = new ClaimStats();
            var (rate, _) = await DrainAsync(engine, s, size, claims);
            rates.Add(rate);
            var all = claims.Claims.ToArray();
            var full = all.Where(c => c.Jobs > 0).Select(c => c.Milliseconds).Order().ToArray();
            samples.Add(new($"{size:N0} waiting, {s.Workers} worker(s) x {s.Threads} threads", "jobs/s", rate));
            if (full.Length > 0)
            {
                samples.Add(new($"{size:N0} waiting: claim round trip p50 (claims that brought jobs)", "ms", Percentile(full, 0.50)));
                samples.Add(new($"{size:N0} waiting: claim round trip p95", "ms", Percentile(full, 0.95)));
                samples.Add(new($"{size:N0} waiting: claim round trip p99", "ms", Percentile(full, 0.99)));
                samples.Add(new($"{size:N0} waiting: jobs per claim (mean)", "jobs", all.Where(c => c.Jobs > 0).Average(c => c.Jobs)));
            }
        }

        for (var i = 1; i < sizes.Length; i++)
        {
            samples.Add(new($"ratio {sizes[i]:N0} / {sizes[0]:N0}", "x", rates[i] / rates[0]));
        }

        return samples;
    }

    /// <summary>
    /// Bulk-enqueues <paramref name="jobs"/> no-op jobs into a fresh database, then starts a worker host and returns
    /// jobs/s from its start until every job is finished in the database (the jobs' own counter is polled every 50 ms;
    /// once it reaches the total, the database is polled until nothing is ready or claimed).
    /// </summary>
    /// <remarks>
    /// Also measures the drain's cost from the worker host's start to the last job recorded: CPU of the bench's
    /// process tree and of the PostgreSQL server the bench started (<see cref="ProcessCpu"/>), and PostgreSQL's
    /// counters for the database (after the host has stopped and its connections closed, so that they are reported).
    /// With <paramref name="rtt"/> &gt; 0 the worker host reaches PostgreSQL through a proxy adding that round trip.
    /// </remarks>
    /// <param name="variant">Npgsql connection-string settings added for the worker host (an A/B of a setting Keel's store respects), empty for none.</param>
    /// <summary>
    /// An A/B arm's settings: <c>ClaimAhead=N</c> is the workers' <see cref="WorkerOptions.ClaimAhead"/>,
    /// <c>DirectHandOff=true|false</c> their <see cref="WorkerOptions.DirectHandOff"/>; the rest, separated by
    /// semicolons, Npgsql connection-string settings.
    /// </summary>
    public static (int? ClaimAhead, bool? DirectHandOff, string Npgsql) SplitVariant(string variant)
    {
        int? claimAhead = null;
        bool? directHandOff = null;
        var rest = new List<string>();
        foreach (var part in variant.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("ClaimAhead=", StringComparison.OrdinalIgnoreCase))
            {
                claimAhead = int.TryParse(part["ClaimAhead=".Length..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0
                    ? n
                    : throw new ArgumentException($"--variants: '{part}' needs a whole number of jobs, 0 or more");
            }
            else if (part.StartsWith("DirectHandOff=", StringComparison.OrdinalIgnoreCase))
            {
                directHandOff = bool.TryParse(part["DirectHandOff=".Length..], out var on)
                    ? on
                    : throw new ArgumentException($"--variants: '{part}' needs true or false");
            }
            else
            {
                rest.Add(part);
            }
        }

        return (claimAhead, directHandOff, string.Join(';', rest));
    }

    public static async Task<(double Rate, WorkCost? Cost)> DrainAsync(BenchEngine engine, BenchSettings s, int jobs, ClaimStats? claims = null, double rtt = 0, string variant = "")
    {
        var database = await engine.NewDatabaseAsync();
        IAsyncDisposable? proxy = null;
        try
        {
            using (var client = engine.BuildHost(database, processJobs: false))
            {
                await client.StartAsync();
                var keel = client.Services.GetRequiredService<IKeelClient>();
                var batchSize = jobs >= 100_000 ? 5_000 : 1_000;
                for (var done = 0; done < jobs; done += batchSize)
                {
                    var batch = Math.Min(batchSize, jobs - done);
                    await keel.EnqueueManyAsync(Enumerable.Range(done, batch).Select(Noop).ToList());
                }

                await client.StopAsync();
            }

            var postgres = engine as PostgresEngine;
            var workerDatabase = database;
            if (rtt > 0)
            {
                _ = postgres ?? throw new ArgumentException("--rtt needs PostgreSQL");
                (workerDatabase, proxy) = await PostgresEngine.ThroughDelayAsync(database, rtt);
            }

            var (claimAhead, directHandOff, npgsql) = SplitVariant(variant);
            if (npgsql.Length > 0)
            {
                workerDatabase = workerDatabase.TrimEnd(';') + ";" + npgsql;
            }

            Counters.Reset();
            PostgresCounters? countersBefore = null;
            if (postgres is not null)
            {
                await postgres.SettleAsync(database);
                countersBefore = await postgres.SettledCountersAsync(database);
            }

            var postmaster = engine.Server?.PostmasterPid ?? 0;
            using var host = engine.BuildHost(workerDatabase, processJobs: true, s.Workers, s.Threads, claims, claimAhead, directHandOff);
            var storage = host.Services.GetRequiredService<IKeelStorage>();
            var cpuBefore = ProcessCpu.Read(postmaster);
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
            var cpuAfter = ProcessCpu.Read(postmaster);
            await host.StopAsync();
            host.Dispose(); // closes the store's own pool: its backends exit and report their counters
            PostgresCounters? counters = null;
            if (postgres is not null && countersBefore is not null)
            {
                await postgres.SettleAsync(database);
                counters = (await postgres.SettledCountersAsync(database)).Minus(countersBefore);
                if (!s.Smoke && s.ShowStatements)
                {
                    foreach (var (query, calls, rows, totalMs) in await postgres.TopStatementsAsync(database, 8))
                    {
                        var text = string.Join(' ', query.Split((char[])[' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries));
                        Console.WriteLine(FormattableString.Invariant($"      {(double)calls / jobs,6:F3} calls/job {(double)rows / jobs,6:F3} rows/job {totalMs * 1_000 / jobs,7:F1} us/job  {(text.Length > 110 ? text[..110] + "…" : text)}"));
                    }
                }
            }

            return (jobs / elapsed.TotalSeconds, new WorkCost(cpuAfter.Bench - cpuBefore.Bench, cpuAfter.Postgres - cpuBefore.Postgres, counters));
        }
        finally
        {
            if (proxy is not null)
            {
                await proxy.DisposeAsync();
            }

            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>
    /// The issue's workflow measurement: the same number of no-op jobs drained as plain jobs and as one batch with an
    /// <c>OnComplete</c> callback (each in a fresh database, the batch started in one call), and the time from the last
    /// batch job returning to its callback starting. One callback latency per run: the table's median over
    /// <c>--runs</c> is its p50.
    /// </summary>
    private static async Task<List<Sample>> BatchAsync(BenchEngine engine, BenchSettings s)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 2_000 : 100_000);
        var (plain, _) = await DrainAsync(engine, s, jobs);
        var database = await engine.NewDatabaseAsync();
        try
        {
            using (var client = engine.BuildHost(database, processJobs: false))
            {
                await client.StartAsync();
                var keel = client.Services.GetRequiredService<IKeelClient>();
                await keel.StartBatchAsync(b =>
                {
                    for (var i = 0; i < jobs; i++)
                    {
                        b.Add(Noop(i));
                    }

                    b.OnComplete<BatchDoneJob, NoopArgs>(new NoopArgs(0));
                });
                await client.StopAsync();
            }

            Counters.Reset();
            using var host = engine.BuildHost(database, processJobs: true, s.Workers, s.Threads);
            var started = Stopwatch.GetTimestamp();
            var watch = Stopwatch.StartNew();
            await host.StartAsync();
            while (Interlocked.Read(ref Counters.CallbackStarted) == 0)
            {
                if (watch.Elapsed > TimeSpan.FromMinutes(10))
                {
                    throw new TimeoutException($"the batch callback did not run: {Interlocked.Read(ref Counters.Performed):N0} of {jobs:N0} jobs performed");
                }

                await Task.Delay(5);
            }

            // Until the callback started: every completion of the batch was committed by then (the plain drain, too,
            // waits until the database shows every job finished).
            var drained = Stopwatch.GetElapsedTime(started, Counters.CallbackStarted);
            var callback = Stopwatch.GetElapsedTime(Counters.LastPerformed, Counters.CallbackStarted);
            await Task.Delay(500);
            await host.StopAsync();
            if (Interlocked.Read(ref Counters.Callbacks) != 1 || Interlocked.Read(ref Counters.Performed) < jobs)
            {
                throw new InvalidOperationException($"the batch callback ran {Counters.Callbacks} times after {Counters.Performed:N0} of {jobs:N0} jobs");
            }

            var batch = jobs / drained.TotalSeconds;
            return
            [
                new($"{jobs:N0} plain no-op jobs, {s.Workers} worker(s) x {s.Threads} threads", "jobs/s", plain),
                new($"{jobs:N0} no-op jobs in one batch", "jobs/s", batch),
                new("batch drain rate / plain drain rate", "x", batch / plain),
                new("last batch job returned -> callback started", "ms", callback.TotalMilliseconds),
            ];
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>
    /// An idle host (Keel's defaults); one job every 20 ms, enqueued first by an enqueuer child process (the issue's
    /// measurement: the worker learns of the job through the database), then by the bench's own process (Keel's local
    /// wake-up). Each job records enqueue→start of PerformAsync.
    /// </summary>
    private static async Task<List<Sample>> LatencyAsync(BenchEngine engine, BenchSettings s)
    {
        var samples = new List<Sample>();
        foreach (var variant in s.Variants)
        {
            var named = variant.Length == 0 ? "" : $"[{variant}] ";
            samples.AddRange((await LatencyArmAsync(engine, s, SplitVariant(variant).DirectHandOff)).Select(x => x with { Metric = named + x.Metric }));
        }

        return samples;
    }

    /// <summary>One arm of the latency scenario: pickup from another process, then from the same one, with its breakdown.</summary>
    private static async Task<List<Sample>> LatencyArmAsync(BenchEngine engine, BenchSettings s, bool? directHandOff)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 20 : 500);
        var floor = engine.IsPostgres ? await PickupFloor.MeasureAsync(engine, jobs) : null;
        var other = await KeelLatencyAsync(engine, s, jobs, crossProcess: true, directHandOff: directHandOff);
        var returns = new List<(long Before, long After)>();
        var same = await KeelLatencyAsync(engine, s, jobs, crossProcess: false, returns, directHandOff);

        // Where the same-process span goes: the enqueue call (its commit included), then from its return to the start.
        var enqueueCall = returns.Select(r => Stopwatch.GetElapsedTime(r.Before, r.After).TotalMilliseconds).Order().ToArray();
        var afterReturn = returns.Where(r => Counters.LatencyStarts.ContainsKey(r.Before))
            .Select(r => Stopwatch.GetElapsedTime(r.After, Counters.LatencyStarts[r.Before]).TotalMilliseconds).Order().ToArray();
        List<Sample> floorSamples = floor is null ? [] :
        [
            new($"floor, no Keel: durable INSERT + NOTIFY -> LISTEN in another process p50 ({jobs} at ~50/s)", "ms", Percentile(floor, 0.50)),
            new("floor, no Keel: p99", "ms", Percentile(floor, 0.99)),
            new("other process: enqueue->start p50 minus the floor's p50", "ms", Percentile(other, 0.50) - Percentile(floor, 0.50)),
        ];
        return
        [
            .. floorSamples,
            new($"other process: enqueue->start p50 ({jobs} jobs at ~50/s)", "ms", Percentile(other, 0.50)),
            new("other process: enqueue->start p95", "ms", Percentile(other, 0.95)),
            new("other process: enqueue->start p99", "ms", Percentile(other, 0.99)),
            new("other process: enqueue->start max", "ms", other[^1]),
            new($"same process: enqueue->start p50 ({jobs} jobs at ~50/s)", "ms", Percentile(same, 0.50)),
            new("same process: enqueue->start p95", "ms", Percentile(same, 0.95)),
            new("same process: enqueue->start p99", "ms", Percentile(same, 0.99)),
            new("same process: enqueue->start max", "ms", same[^1]),
            new("same process: the enqueue call p50", "ms", Percentile(enqueueCall, 0.50)),
            new("same process: the enqueue call p99", "ms", Percentile(enqueueCall, 0.99)),
            new("same process: enqueue's return->start p50", "ms", Percentile(afterReturn, 0.50)),
            new("same process: enqueue's return->start p99", "ms", Percentile(afterReturn, 0.99)),
        ];
    }

    /// <summary>The sorted enqueue→start latencies (ms) of <paramref name="jobs"/> jobs after 20 warm-up jobs.</summary>
    /// <param name="returns">Same process only: filled with each measured job's timestamps before and after its enqueue call.</param>
    /// <param name="directHandOff">The workers' <see cref="WorkerOptions.DirectHandOff"/>; null for the default.</param>
    public static async Task<double[]> KeelLatencyAsync(BenchEngine engine, BenchSettings s, int jobs, bool crossProcess, List<(long Before, long After)>? returns = null, bool? directHandOff = null)
    {
        const int warmup = 20;
        var database = await engine.NewDatabaseAsync();
        try
        {
            Counters.Reset();
            using var host = engine.BuildHost(database, processJobs: true, s.Workers, s.Threads, directHandOff: directHandOff);
            await host.StartAsync();
            await Task.Delay(s.Smoke ? 200 : 1_000);
            if (crossProcess)
            {
                await Child.RunEnqueuerAsync("keel", database, warmup, jobs);
            }
            else
            {
                var client = host.Services.GetRequiredService<IKeelClient>();
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
                for (var i = 0; i < warmup + jobs; i++)
                {
                    await timer.WaitForNextTickAsync();
                    var before = Stopwatch.GetTimestamp();
                    await client.EnqueueAsync(JobRequest.Create<LatencyJob, LatencyArgs>(new LatencyArgs(before, i < warmup)));
                    if (i >= warmup)
                    {
                        returns?.Add((before, Stopwatch.GetTimestamp()));
                    }
                }
            }

            await WaitForPerformedAsync(warmup + jobs, "latency");
            await host.StopAsync();
            var sorted = Counters.Latencies.Order().ToArray();
            if (sorted[0] < 0)
            {
                throw new InvalidOperationException($"a negative enqueue->start time ({sorted[0]:F3} ms): the processes do not share a clock");
            }

            return sorted;
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>Waits until the jobs' counter reaches <paramref name="total"/> (60 s at most).</summary>
    public static async Task WaitForPerformedAsync(int total, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (Interlocked.Read(ref Counters.Performed) < total)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"{what}: only {Interlocked.Read(ref Counters.Performed)} of {total} jobs started within 60 s");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>
    /// The same workloads on Keel and on Hangfire (PostgreSQL storage), workload by workload in the same run and on the
    /// same server, each in a fresh database; Hangfire gets as many workers as Keel has threads in all.
    /// </summary>
    private static async Task<List<Sample>> HangfireAsync(BenchEngine engine, BenchSettings s)
    {
        var jobs = s.Jobs ?? (s.Smoke ? 100 : 10_000);
        var single = Math.Min(jobs, s.Smoke ? 50 : 2_000);
        var latencyJobs = s.Smoke ? 20 : 500;
        var workerCount = s.Workers * s.Threads;
        var samples = new List<Sample>();
        void Compare(string metric, string unit, double keel, double hangfire, string better)
        {
            samples.Add(new(metric + ": Keel", unit, keel));
            samples.Add(new(metric + ": Hangfire", unit, hangfire));
            samples.Add(new(metric + $": Keel/Hangfire ({better})", "x", keel / hangfire));
        }

        // Enqueue: one by one through each client, then the bulk in one transaction.
        var (keelSingle, keelBulk) = await KeelEnqueueAsync(engine, single, jobs);
        var (hangfireSingle, hangfireBulk) = await HangfireBench.EnqueueAsync(engine, single, jobs);
        Compare($"enqueue one by one ({single:N0})", "jobs/s", keelSingle, hangfireSingle, ">1: Keel faster");
        Compare($"enqueue bulk, one transaction ({jobs:N0})", "jobs/s", keelBulk, hangfireBulk, ">1: Keel faster");

        // Throughput: burn down pre-enqueued no-op jobs.
        var (keelRate, _) = await DrainAsync(engine, s, jobs);
        var hangfireRate = await HangfireBench.DrainAsync(engine, jobs, workerCount);
        Compare($"throughput, {jobs:N0} no-op jobs, {workerCount} workers/threads", "jobs/s", keelRate, hangfireRate, ">1: Keel faster");

        // Latency: an idle system, one job every 20 ms, from another process and from the same process (smoke: the
        // other process only, to keep CI's run short).
        foreach (var crossProcess in s.Smoke ? new[] { true } : [true, false])
        {
            var where = crossProcess ? "other process" : "same process";
            var keel = await KeelLatencyAsync(engine, s, latencyJobs, crossProcess);
            var hangfire = await HangfireBench.LatencyAsync(engine, latencyJobs, workerCount, crossProcess, s.Smoke);
            foreach (var p in new[] { 0.50, 0.95, 0.99 })
            {
                Compare($"latency, {where}: enqueue->start p{p * 100:0} ({latencyJobs} jobs at ~50/s)", "ms", Percentile(keel, p), Percentile(hangfire, p), "<1: Keel faster");
            }
        }

        return samples;
    }

    /// <summary>(one by one jobs/s, bulk jobs/s) for Keel: <c>EnqueueAsync</c> each, then one <c>EnqueueManyAsync</c> (one transaction).</summary>
    private static async Task<(double Single, double Bulk)> KeelEnqueueAsync(BenchEngine engine, int single, int bulk)
    {
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

            var watch = Stopwatch.StartNew();
            for (var i = 0; i < single; i++)
            {
                await client.EnqueueAsync(Noop(i));
            }

            var singleRate = single / watch.Elapsed.TotalSeconds;
            var requests = Enumerable.Range(0, bulk).Select(Noop).ToList();
            watch.Restart();
            await client.EnqueueManyAsync(requests);
            var bulkRate = bulk / watch.Elapsed.TotalSeconds;
            await host.StopAsync();
            return (singleRate, bulkRate);
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;

namespace Keel.Bench;

public sealed record NoopArgs(int N);

/// <summary>Does nothing but count itself.</summary>
[Job("bench.noop")]
public sealed class NoopJob : IJob<NoopArgs>
{
    public Task PerformAsync(NoopArgs args, JobContext context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Counters.Performed);
        return Task.CompletedTask;
    }
}

/// <summary>
/// A Stopwatch timestamp taken just before the job was enqueued, by the bench or by its enqueuer child process: on
/// Linux Stopwatch reads CLOCK_MONOTONIC, one clock for every process on the machine.
/// </summary>
public sealed record LatencyArgs(long EnqueuedTimestamp, bool Warmup);

/// <summary>Records enqueue→start of PerformAsync.</summary>
[Job("bench.latency")]
public sealed class LatencyJob : IJob<LatencyArgs>
{
    public Task PerformAsync(LatencyArgs args, JobContext context, CancellationToken cancellationToken)
    {
        var elapsed = Stopwatch.GetElapsedTime(args.EnqueuedTimestamp);
        if (!args.Warmup)
        {
            Counters.Latencies.Enqueue(elapsed.TotalMilliseconds);
        }

        Interlocked.Increment(ref Counters.Performed);
        return Task.CompletedTask;
    }
}

/// <summary>Process-wide counters: the bench runs one host at a time and resets them before each run.</summary>
public static class Counters
{
    public static long Performed;

    public static ConcurrentQueue<double> Latencies { get; private set; } = new();

    public static void Reset()
    {
        Interlocked.Exchange(ref Performed, 0);
        Latencies = new ConcurrentQueue<double>();
    }
}

public sealed record SleepArgs(int Milliseconds);

/// <summary>
/// A long job for the recovery scenario (run in child processes): appends "start job attempt pid timestamp" to the
/// run log of its own process (flushed at once, so a process killed with SIGKILL has recorded what it started), then
/// sleeps, honouring cancellation. The timestamp is <see cref="Stopwatch.GetTimestamp"/>: CLOCK_MONOTONIC on Linux,
/// one clock for every process on the machine, so the bench compares it with its own.
/// </summary>
[Job("bench.sleep")]
public sealed class SleepJob : IJob<SleepArgs>
{
    public static string? RunLogFolder { get; set; }

    private static readonly Lock Gate = new();

    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        if (RunLogFolder is not null)
        {
            var line = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"start {context.JobId} {context.Attempt} {Environment.ProcessId} {Stopwatch.GetTimestamp()}\n");
            lock (Gate)
            {
                File.AppendAllText(Path.Combine(RunLogFolder, $"{Environment.ProcessId}.log"), line);
            }
        }

        await Task.Delay(args.Milliseconds, cancellationToken);
    }
}

/// <summary>Hangfire's jobs: static methods (no activator involved) that count themselves like Keel's.</summary>
public static class HangfireJobs
{
    public static void Noop(int n)
    {
        _ = n;
        Interlocked.Increment(ref Counters.Performed);
    }

    /// <summary>Records enqueue→start from a <see cref="Stopwatch"/> timestamp taken just before the enqueue.</summary>
    public static void Latency(long enqueuedTimestamp, bool warmup)
    {
        var elapsed = Stopwatch.GetElapsedTime(enqueuedTimestamp);
        if (!warmup)
        {
            Counters.Latencies.Enqueue(elapsed.TotalMilliseconds);
        }

        Interlocked.Increment(ref Counters.Performed);
    }
}

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

/// <summary>A Stopwatch timestamp taken by the bench just before it enqueued the job (same process).</summary>
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

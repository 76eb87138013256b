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
        Counters.MarkPerformed();
        return Task.CompletedTask;
    }
}

/// <summary>The batch scenario's <c>OnComplete</c> callback: records when it started and how often it ran.</summary>
[Job("bench.batch-done")]
public sealed class BatchDoneJob : IJob<NoopArgs>
{
    public Task PerformAsync(NoopArgs args, JobContext context, CancellationToken cancellationToken)
    {
        Interlocked.CompareExchange(ref Counters.CallbackStarted, Stopwatch.GetTimestamp(), 0);
        Interlocked.Increment(ref Counters.Callbacks);
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
        var started = Stopwatch.GetTimestamp();
        var elapsed = Stopwatch.GetElapsedTime(args.EnqueuedTimestamp, started);
        if (!args.Warmup)
        {
            Counters.Latencies.Enqueue(elapsed.TotalMilliseconds);
            Counters.LatencyStarts[args.EnqueuedTimestamp] = started;
        }

        Interlocked.Increment(ref Counters.Performed);
        return Task.CompletedTask;
    }
}

/// <summary>Process-wide counters: the bench runs one host at a time and resets them before each run.</summary>
public static class Counters
{
    public static long Performed;

    /// <summary>The Stopwatch timestamp at which the latest no-op job returned (batch scenario).</summary>
    public static long LastPerformed;

    /// <summary>The Stopwatch timestamp at which the batch callback first started; 0 before.</summary>
    public static long CallbackStarted;

    /// <summary>How many times the batch callback ran.</summary>
    public static long Callbacks;

    public static ConcurrentQueue<double> Latencies { get; private set; } = new();

    /// <summary>Latency jobs' start timestamps by the timestamp taken before their enqueue (same-process split).</summary>
    public static ConcurrentDictionary<long, long> LatencyStarts { get; private set; } = new();

    /// <summary>Raises <see cref="LastPerformed"/> to now.</summary>
    public static void MarkPerformed()
    {
        var now = Stopwatch.GetTimestamp();
        long seen;
        while (now > (seen = Interlocked.Read(ref LastPerformed)) && Interlocked.CompareExchange(ref LastPerformed, now, seen) != seen)
        {
        }
    }

    public static void Reset()
    {
        Interlocked.Exchange(ref Performed, 0);
        Interlocked.Exchange(ref LastPerformed, 0);
        Interlocked.Exchange(ref CallbackStarted, 0);
        Interlocked.Exchange(ref Callbacks, 0);
        Latencies = new ConcurrentQueue<double>();
        LatencyStarts = new ConcurrentDictionary<long, long>();
    }
}

/// <summary>A sleep of <paramref name="Milliseconds"/>; with <paramref name="Hold"/>, until the bench releases the run (at most that long).</summary>
public sealed record SleepArgs(int Milliseconds, bool Hold = false);

/// <summary>
/// The run log of the recovery scenario's child processes: each job run appends "start|end|cancel job attempt pid unix-ms
/// monotonic" to a file of its own process in the folder (<see cref="Keel.TestInfrastructure.RunLogFiles"/> reads them), flushed at
/// once so a process killed with SIGKILL has recorded what it started. The monotonic timestamp is
/// <see cref="Stopwatch.GetTimestamp"/>: CLOCK_MONOTONIC on Linux, one clock for every process on the machine, so the
/// bench compares it with its own. The bench releases a held run by creating <c>release-JOB-PID</c> (or
/// <c>release-all</c>) in the same folder.
/// </summary>
public static class RunLogWriter
{
    private static readonly Lock Gate = new();

    public static string? Folder { get; set; }

    public static void Write(string what, JobContext context)
    {
        if (Folder is null)
        {
            return;
        }

        var line = Keel.TestInfrastructure.RunLogFiles.Format(what, context.JobId, context.Attempt, Environment.ProcessId, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Stopwatch.GetTimestamp());
        lock (Gate)
        {
            File.AppendAllText(Path.Combine(Folder, $"{Environment.ProcessId}.log"), line);
        }
    }

    /// <summary>The file whose existence releases <paramref name="jobId"/>'s run in process <paramref name="pid"/>.</summary>
    public static string ReleaseFile(string folder, long jobId, int pid)
        => Path.Combine(folder, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"release-{jobId}-{pid}"));

    /// <summary>The file whose existence releases every held run.</summary>
    public static string ReleaseAllFile(string folder) => Path.Combine(folder, "release-all");

    /// <summary>Waits until the bench releases this run, or <paramref name="limit"/> has passed.</summary>
    public static async Task HoldAsync(long jobId, TimeSpan limit, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var mine = Folder is null ? null : ReleaseFile(Folder, jobId, Environment.ProcessId);
        var all = Folder is null ? null : ReleaseAllFile(Folder);
        while (watch.Elapsed < limit && !(mine is not null && (File.Exists(mine) || File.Exists(all))))
        {
            await Task.Delay(10, cancellationToken);
        }
    }
}

/// <summary>
/// The recovery scenario's job (run in child processes): records its start, then sleeps (or is held until the bench
/// releases it), honouring cancellation, and records its end or its cancellation.
/// </summary>
[Job("bench.sleep")]
public sealed class SleepJob : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLogWriter.Write("start", context);
        try
        {
            if (args.Hold)
            {
                await RunLogWriter.HoldAsync(context.JobId, TimeSpan.FromMilliseconds(args.Milliseconds), cancellationToken);
            }
            else
            {
                await Task.Delay(args.Milliseconds, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            RunLogWriter.Write("cancel", context);
            throw;
        }

        RunLogWriter.Write("end", context);
    }
}

/// <summary>A poison job: kills its own worker process with SIGKILL every time it runs (think of the OOM killer).</summary>
[Job("bench.poison-kill")]
public sealed class PoisonKillJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLogWriter.Write("start", context);
        Child.Signal(Environment.ProcessId, Child.SIGKILL);
        return Task.Delay(Timeout.Infinite, cancellationToken);
    }
}

/// <summary>A poison job: crashes its worker process with <see cref="Environment.FailFast(string)"/> (SIGABRT) every time it runs.</summary>
[Job("bench.poison-failfast")]
public sealed class PoisonFailFastJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLogWriter.Write("start", context);
        Environment.FailFast("a poison job (Keel.Bench recovery scenario)");
        return Task.CompletedTask;
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

using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Keel.Tests.EndToEnd;

/// <summary>What test jobs saw: how often each job ran, in which order, and with what.</summary>
public sealed class Recorder
{
    private int _running;
    private int _maxRunning;

    public ConcurrentDictionary<long, int> Runs { get; } = new();

    public ConcurrentQueue<string> Order { get; } = new();

    public ConcurrentQueue<JobContext> Contexts { get; } = new();

    /// <summary>Where each run of a resumable job started (its checkpoint), and every item it processed: its own log.</summary>
    public ConcurrentQueue<(long JobId, int Start)> Starts { get; } = new();

    /// <summary>Every item a resumable job processed, in order.</summary>
    public ConcurrentQueue<(long JobId, int Item)> Items { get; } = new();

    /// <summary>Runs that ended: (job, attempt, whether their token had fired, the reason it fired), in order.</summary>
    public ConcurrentQueue<(long JobId, int Attempt, bool Cancelled, string? Reason)> Ended { get; } = new();

    public int MaxConcurrent => Volatile.Read(ref _maxRunning);

    /// <summary>The most runs seen at once per key (e.g. per account), for checking concurrency limits.</summary>
    public ConcurrentDictionary<string, int> MaxConcurrentByKey { get; } = new();

    private ConcurrentDictionary<string, int> RunningByKey { get; } = new();

    public void EnterKey(string key)
    {
        var now = RunningByKey.AddOrUpdate(key, 1, (_, n) => n + 1);
        MaxConcurrentByKey.AddOrUpdate(key, now, (_, max) => Math.Max(max, now));
    }

    public void LeaveKey(string key) => RunningByKey.AddOrUpdate(key, 0, (_, n) => n - 1);

    public int Total => Runs.Values.Sum();

    public void Enter(JobContext context)
    {
        Runs.AddOrUpdate(context.JobId, 1, (_, n) => n + 1);
        Contexts.Enqueue(context);
        var now = Interlocked.Increment(ref _running);
        int seen;
        while (now > (seen = Volatile.Read(ref _maxRunning)) && Interlocked.CompareExchange(ref _maxRunning, now, seen) != seen)
        {
        }
    }

    public void Leave() => Interlocked.Decrement(ref _running);
}

public sealed record CountArgs(int N, string Label = "");

[Job("count")]
public sealed class CountingJob(Recorder recorder) : IJob<CountArgs>
{
    public async Task PerformAsync(CountArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        recorder.Order.Enqueue(args.Label);
        await Task.Yield();
        recorder.Leave();
    }
}

[Job("always-fails", MaxAttempts = 3)]
public sealed class AlwaysFailsJob(Recorder recorder) : IJob<CountArgs>
{
    public Task PerformAsync(CountArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        recorder.Leave();
        throw new InvalidOperationException($"always fails (attempt {context.Attempt})");
    }
}

[Job("discards")]
[DiscardOn(typeof(ArgumentException))]
public sealed class DiscardingJob(Recorder recorder) : IJob<CountArgs>
{
    public Task PerformAsync(CountArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        recorder.Leave();
        throw new ArgumentOutOfRangeException(nameof(args), "not worth retrying");
    }
}

public sealed record SleepArgs(int Milliseconds);

[Job("sleeps")]
public sealed class SleepingJob(Recorder recorder) : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            await Task.Delay(args.Milliseconds, cancellationToken);
        }
        finally
        {
            recorder.Leave();
        }
    }
}

[Job("times-out", TimeoutSeconds = 0.2, MaxAttempts = 1)]
public sealed class TimingOutJob(Recorder recorder) : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            await Task.Delay(args.Milliseconds, cancellationToken);
        }
        finally
        {
            recorder.Leave();
        }
    }
}

public sealed record AccountArgs(int Account, int Milliseconds);

/// <summary>One run at a time per account.</summary>
[Job("per-account")]
public sealed class PerAccountJob(Recorder recorder) : IJob<AccountArgs>
{
    public async Task PerformAsync(AccountArgs args, JobContext context, CancellationToken cancellationToken)
    {
        var key = args.Account.ToString(System.Globalization.CultureInfo.InvariantCulture);
        recorder.EnterKey(key);
        recorder.Enter(context);
        try
        {
            await Task.Delay(args.Milliseconds, cancellationToken);
        }
        finally
        {
            recorder.Leave();
            recorder.LeaveKey(key);
        }
    }
}

/// <summary>Sleeps without its token: it ignores every cancellation (a stop, a lost lease, a prune, a timeout).</summary>
[Job("ignores-cancellation", MaxAttempts = 5)]
public sealed class IgnoresCancellationJob(Recorder recorder) : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            await Task.Delay(args.Milliseconds, CancellationToken.None);
        }
        finally
        {
            recorder.Leave();
            recorder.Ended.Enqueue((context.JobId, context.Attempt, cancellationToken.IsCancellationRequested, context.CancellationReason));
        }
    }
}

/// <summary>A timeout of 200 ms that it ignores.</summary>
[Job("overtime", TimeoutSeconds = 0.2, MaxAttempts = 3)]
public sealed class OvertimeJob(Recorder recorder) : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            await Task.Delay(args.Milliseconds, CancellationToken.None);
        }
        finally
        {
            recorder.Leave();
        }
    }
}

/// <summary>Sleeps honouring its token, and records why the token fired and whether its claim was still held then.</summary>
[Job("fenced")]
public sealed class FencedJob(Recorder recorder) : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            Assert.True(context.FencingToken > 0);
            Assert.True(await context.IsClaimHeldAsync(CancellationToken.None));
            await Task.Delay(args.Milliseconds, cancellationToken);
        }
        finally
        {
            recorder.Leave();
            recorder.Ended.Enqueue((context.JobId, context.Attempt, cancellationToken.IsCancellationRequested, context.CancellationReason));
        }
    }
}

/// <summary>Reports progress in a tight loop (1,000 reports), then sleeps honouring its token.</summary>
[Job("reports-progress")]
public sealed class ReportsProgressJob(Recorder recorder) : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            for (var i = 1; i <= 1000; i++)
            {
                await context.ReportProgressAsync(i / 1000.0, $"{i} of 1000", cancellationToken);
            }

            await Task.Delay(args.Milliseconds, cancellationToken);
        }
        finally
        {
            recorder.Leave();
        }
    }
}

public sealed record ImportResult(int Rows, string Source);

/// <summary>Logs three lines through its context and stores a result.</summary>
[Job("logs-and-result")]
public sealed class LogsAndResultJob(Recorder recorder) : IJob<CountArgs>
{
    public async Task PerformAsync(CountArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            context.Logger.LogInformation("importing {Rows} rows", args.N);
            context.Logger.LogWarning("row {Row} skipped: no email", 7);
            context.Logger.LogError(new InvalidOperationException("bad row"), "row {Row} failed", 9);
            await context.SetResultAsync(new ImportResult(args.N - 2, args.Label), cancellationToken);
        }
        finally
        {
            recorder.Leave();
        }
    }
}

public sealed record ItemsToResume(int Items, int Milliseconds);

public sealed record ResumePosition(int Next);

/// <summary>
/// Works through items one by one honouring its token, saving a checkpoint after each; records where each run started
/// and every item it processed (its own log), so a test can check that a resumed job continues where it stopped.
/// </summary>
[Job("resumable")]
public sealed class ResumableJob(Recorder recorder) : IJob<ItemsToResume>
{
    public async Task PerformAsync(ItemsToResume args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        try
        {
            var next = context.GetCheckpoint<ResumePosition>()?.Next ?? 0;
            recorder.Starts.Enqueue((context.JobId, next));
            for (var item = next; item < args.Items; item++)
            {
                await Task.Delay(args.Milliseconds, cancellationToken);
                recorder.Items.Enqueue((context.JobId, item));
                await context.SaveCheckpointAsync(new ResumePosition(item + 1), CancellationToken.None);
            }
        }
        finally
        {
            recorder.Leave();
            recorder.Ended.Enqueue((context.JobId, context.Attempt, cancellationToken.IsCancellationRequested, context.CancellationReason));
        }
    }
}

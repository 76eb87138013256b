using System.Globalization;
using System.Runtime.InteropServices;

namespace Keel.TestApp;

/// <summary>
/// Appends "start|end|cancel job attempt pid unix-ms" lines to a file of this process's own inside the run-log folder
/// (processes never share a file, so no line is ever lost to a concurrent write), flushed line by line so a
/// process killed with SIGKILL has already recorded what it started.
/// </summary>
public static class RunLog
{
    private static readonly Lock Gate = new();

    public static string? Folder { get; set; }

    public static void Write(string what, JobContext context)
    {
        if (Folder is null)
        {
            return;
        }

        var line = string.Create(CultureInfo.InvariantCulture, $"{what} {context.JobId} {context.Attempt} {Environment.ProcessId} {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}\n");
        lock (Gate)
        {
            File.AppendAllText(System.IO.Path.Combine(Folder, $"{Environment.ProcessId}.log"), line);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> between a "start" and an "end" line; when the job's token cancels it, writes a
    /// "cancel" line (the moment the job stopped) and lets the cancellation go on.
    /// </summary>
    public static async Task RecordAsync(JobContext context, Func<Task> work, CancellationToken cancellationToken)
    {
        Write("start", context);
        try
        {
            await work();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Write("cancel", context);
            throw;
        }

        Write("end", context);
    }
}

public sealed record SleepArgs(int Milliseconds);

/// <summary>Sleeps, honouring cancellation, and records its start and its end or cancellation.</summary>
[Job("recorded")]
public sealed class RecordedJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        return RunLog.RecordAsync(context, () => Task.Delay(args.Milliseconds, cancellationToken), cancellationToken);
    }
}

/// <summary>Sleeps and ignores cancellation, so a frozen-then-resumed worker really does produce a late result.</summary>
[Job("stubborn")]
public sealed class StubbornJob : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLog.Write("start", context);
        await Task.Delay(args.Milliseconds, CancellationToken.None);
        RunLog.Write("end", context);
    }
}

/// <summary>Kills its own worker process every time it runs (think of a job that always triggers the OOM killer).</summary>
[Job("suicide", MaxAttempts = 10)]
public sealed partial class SuicideJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLog.Write("start", context);
        Kill(Environment.ProcessId, 9);
        return Task.Delay(Timeout.Infinite, cancellationToken);
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}

/// <summary>Short work for the chaos test; survives as many lost workers as chaos throws at it.</summary>
[Job("chaos", MaxAttempts = 1000)]
public sealed class ChaosJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        return RunLog.RecordAsync(context, () => Task.Delay(args.Milliseconds, cancellationToken), cancellationToken);
    }
}

/// <summary>At most one at a time across every worker process ("limited/shared", limit 1).</summary>
[Job("limited", MaxAttempts = 10)]
public sealed class LimitedJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        return RunLog.RecordAsync(context, () => Task.Delay(args.Milliseconds, cancellationToken), cancellationToken);
    }
}

/// <summary>Crashes its worker process with SIGABRT every time it runs (Environment.FailFast), as a corrupted runtime would.</summary>
[Job("failfast", MaxAttempts = 10)]
public sealed class FailFastJob : IJob<SleepArgs>
{
    public Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLog.Write("start", context);
        Environment.FailFast("a poison job (test)");
        return Task.CompletedTask;
    }
}

/// <summary>Has a timeout (registered with 300 ms) and ignores it: sleeps without its token.</summary>
[Job("overtime", MaxAttempts = 10)]
public sealed class OvertimeJob : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLog.Write("start", context);
        await Task.Delay(args.Milliseconds, CancellationToken.None);
        RunLog.Write("end", context);
    }
}

public sealed record ItemsArgs(int Items, int Milliseconds);

public sealed record ItemsPosition(int Next);

/// <summary>
/// Works through items one by one and saves a checkpoint every 100 (docs/running-jobs.md), resuming from the last one.
/// Its own log (<c>&lt;pid&gt;.items</c> in the run-log folder, a line per event, flushed at once) says where each
/// attempt resumed, every item it processed and every checkpoint it saved: what the crash test checks.
/// </summary>
[Job("checkpointed", MaxAttempts = 20)]
public sealed class CheckpointedJob : IJob<ItemsArgs>
{
    public async Task PerformAsync(ItemsArgs args, JobContext context, CancellationToken cancellationToken)
    {
        var next = context.GetCheckpoint<ItemsPosition>()?.Next ?? 0;
        ItemLog.Write(context, "resume", next);
        for (var item = next; item < args.Items; item++)
        {
            await Task.Delay(args.Milliseconds, cancellationToken);
            ItemLog.Write(context, "item", item);
            if ((item + 1) % 100 == 0)
            {
                await context.SaveCheckpointAsync(new ItemsPosition(item + 1), cancellationToken);
                ItemLog.Write(context, "saved", item + 1);
            }
        }

        ItemLog.Write(context, "done", args.Items);
    }
}

/// <summary>The checkpointed job's own log: "what job attempt pid value" lines in <c>&lt;pid&gt;.items</c>.</summary>
public static class ItemLog
{
    private static readonly Lock Gate = new();

    public static void Write(JobContext context, string what, int value)
    {
        if (RunLog.Folder is null)
        {
            return;
        }

        var line = string.Create(CultureInfo.InvariantCulture, $"{what} {context.JobId} {context.Attempt} {Environment.ProcessId} {value}\n");
        lock (Gate)
        {
            File.AppendAllText(System.IO.Path.Combine(RunLog.Folder, $"{Environment.ProcessId}.items"), line);
        }
    }
}

using System.Globalization;
using System.Runtime.InteropServices;

namespace Keel.TestApp;

/// <summary>
/// Appends "start|end job attempt pid unix-ms" lines to a file shared by every process; each line is one
/// append-mode write, so lines from different processes never interleave.
/// </summary>
public static class RunLog
{
    public static string? Path { get; set; }

    public static void Write(string what, JobContext context)
    {
        if (Path is null)
        {
            return;
        }

        var line = string.Create(CultureInfo.InvariantCulture, $"{what} {context.JobId} {context.Attempt} {Environment.ProcessId} {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}\n");
        using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        var bytes = System.Text.Encoding.UTF8.GetBytes(line);
        stream.Write(bytes, 0, bytes.Length);
    }
}

public sealed record SleepArgs(int Milliseconds);

/// <summary>Sleeps, honouring cancellation, and records its start and end.</summary>
[Job("recorded")]
public sealed class RecordedJob : IJob<SleepArgs>
{
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLog.Write("start", context);
        await Task.Delay(args.Milliseconds, cancellationToken);
        RunLog.Write("end", context);
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
    public async Task PerformAsync(SleepArgs args, JobContext context, CancellationToken cancellationToken)
    {
        RunLog.Write("start", context);
        await Task.Delay(args.Milliseconds, cancellationToken);
        RunLog.Write("end", context);
    }
}

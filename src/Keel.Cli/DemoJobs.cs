using System.Globalization;
using Keel.Hosting.Supervision;

namespace Keel.Cli;

/// <summary>Arguments of the demo jobs.</summary>
/// <param name="Number">Which job of its kind.</param>
/// <param name="Milliseconds">How long it works.</param>
public sealed record DemoArgs(int Number, int Milliseconds);

/// <summary>Registers the jobs <c>keel demo</c> enqueues.</summary>
public static class DemoJobs
{
    internal const string QuickKind = "keel.demo.quick";
    internal const string SlowKind = "keel.demo.slow";
    internal const string FlakyKind = "keel.demo.flaky";
    internal const string CrashKind = "keel.demo.crash";
    internal const string TickKind = "keel.demo.tick";

    internal static readonly string[] Kinds = [QuickKind, SlowKind, FlakyKind, CrashKind, TickKind];

    /// <summary>Adds the demo's job kinds (quick, slow, flaky, crash, tick) to an application.</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder AddDemoJobs(this IKeelBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder
            .AddJob<DemoQuickJob>()
            .AddJob<DemoSlowJob>()
            .AddJob<DemoFlakyJob>(o => o.Backoff = new BackoffOptions { Base = TimeSpan.FromSeconds(1), Jitter = 0.1 })
            .AddJob<DemoCrashJob>()
            .AddJob<DemoTickJob>();
    }
}

/// <summary>A quick job.</summary>
[Job(DemoJobs.QuickKind)]
public sealed class DemoQuickJob : IJob<DemoArgs>
{
    /// <inheritdoc />
    public Task PerformAsync(DemoArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        return Task.Delay(args.Milliseconds, cancellationToken);
    }
}

/// <summary>A slow job.</summary>
[Job(DemoJobs.SlowKind, Queue = "slow")]
public sealed class DemoSlowJob : IJob<DemoArgs>
{
    /// <inheritdoc />
    public Task PerformAsync(DemoArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        return Task.Delay(args.Milliseconds, cancellationToken);
    }
}

/// <summary>Fails its first attempt (odd numbers fail twice), then succeeds: retried with backoff.</summary>
[Job(DemoJobs.FlakyKind, MaxAttempts = 5)]
public sealed class DemoFlakyJob : IJob<DemoArgs>
{
    /// <inheritdoc />
    public Task PerformAsync(DemoArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        var failures = args.Number % 2 == 1 ? 2 : 1;
        return context.Attempt <= failures
            ? throw new TimeoutException($"flaky service did not answer (attempt {context.Attempt})")
            : Task.CompletedTask;
    }
}

/// <summary>Kills its own worker process on its first attempt — Keel recovers it and the retry succeeds.</summary>
[Job(DemoJobs.CrashKind)]
public sealed class DemoCrashJob(Microsoft.Extensions.Configuration.IConfiguration configuration) : IJob<DemoArgs>
{
    /// <inheritdoc />
    public async Task PerformAsync(DemoArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Attempt > 1)
        {
            return;
        }

        if (configuration["Demo:KillLog"] is { Length: > 0 } log)
        {
            await File.AppendAllTextAsync(log, string.Create(CultureInfo.InvariantCulture, $"{context.JobId} {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}\n"), cancellationToken);
        }

        Posix.Signal(Environment.ProcessId, Posix.SIGKILL);
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }
}

/// <summary>The recurring demo job.</summary>
[Job(DemoJobs.TickKind)]
public sealed class DemoTickJob : IJob<DemoArgs>
{
    /// <inheritdoc />
    public Task PerformAsync(DemoArgs args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
}

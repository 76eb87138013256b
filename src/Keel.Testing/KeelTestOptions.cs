namespace Keel.Testing;

/// <summary>How a <see cref="KeelTestHost"/> starts.</summary>
public sealed class KeelTestOptions
{
    /// <summary>
    /// Where the fake clock starts. A fixed instant by default (2030-01-01 00:00 UTC), so that cron ticks and backoff
    /// times are the same on every run.
    /// </summary>
    public DateTimeOffset StartAt { get; set; } = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// Inline mode: every enqueue through <see cref="IKeelClient"/> (the host's <see cref="KeelTestHost.Client"/> and the
    /// one your services receive) runs the ready jobs at once, before it returns, without moving the clock. A scheduled
    /// job still waits for its time: <see cref="KeelTestHost.RunUntilIdleAsync"/> with <see cref="DrainOptions.AdvanceTime"/>
    /// takes the clock there.
    /// </summary>
    public bool Inline { get; set; }

    /// <summary>
    /// Seeds the jitter of retry backoff, so that a retried job's next attempt falls at the same fake time on every run.
    /// </summary>
    public int RetryJitterSeed { get; set; } = 1;
}

/// <summary>What <see cref="KeelTestHost.RunUntilIdleAsync"/> may do besides running the jobs that are ready now.</summary>
public sealed class DrainOptions
{
    /// <summary>
    /// When nothing is ready, move the fake clock to the next scheduled job or retry and go on. Recurring ticks are
    /// followed only up to <see cref="Until"/>: they never run out.
    /// </summary>
    public bool AdvanceTime { get; set; }

    /// <summary>
    /// With <see cref="AdvanceTime"/>: the time the clock is taken to at most — through every job and recurring tick due
    /// by then, ending there. Null: follow scheduled jobs and retries until none is left, and no recurring tick.
    /// </summary>
    public DateTimeOffset? Until { get; set; }

    /// <summary>
    /// The most job runs one drain makes before it stops with an error: a job that enqueues itself again and again would
    /// otherwise never let it end.
    /// </summary>
    public int MaxRuns { get; set; } = 1000;
}

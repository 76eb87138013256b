namespace Keel.Runtime;

/// <summary>
/// A process's lease as the process itself must assume it, on its own monotonic clock. The database sets the lease to
/// expire <see cref="Duration"/> after it ran a heartbeat, which is after the heartbeat was sent; so the lease surely
/// lasts until send time plus <see cref="Duration"/> here (clocks run at the same rate; their readings may differ). The
/// process fences itself — cancels its jobs, claims nothing — once less than <see cref="FenceMargin"/> is left, and in
/// process mode exits once less than <see cref="ExitMargin"/> is left with a job still running: by the time anyone may
/// recover its claims it runs nothing (DESIGN §2.7).
/// </summary>
internal sealed class Lease(TimeProvider time, TimeSpan duration)
{
    private long _validUntil;
    private long _renewedAt;

    /// <summary>The lease's length: the process's alive threshold.</summary>
    public TimeSpan Duration => duration;

    /// <summary>Fence when this much is left: a third of the lease (10 s of the default 30 s).</summary>
    public TimeSpan FenceMargin => duration / 3;

    /// <summary>In process mode, exit when this much is left and a fenced job still runs: a tenth of the lease.</summary>
    public TimeSpan ExitMargin => duration / 10;

    /// <summary>True once a registration or heartbeat succeeded.</summary>
    public bool Started => Volatile.Read(ref _validUntil) != 0;

    /// <summary>How much of the lease is surely left; zero or less once it may have expired.</summary>
    public TimeSpan Remaining
    {
        get
        {
            var until = Volatile.Read(ref _validUntil);
            return until == 0 ? duration : Ticks(until - time.GetTimestamp());
        }
    }

    /// <summary>How long since the last successful renewal.</summary>
    public TimeSpan SinceRenewal => Volatile.Read(ref _renewedAt) is var at && at != 0 ? time.GetElapsedTime(at) : TimeSpan.Zero;

    /// <summary>True while more than <see cref="FenceMargin"/> is left.</summary>
    public bool Healthy => Remaining > FenceMargin;

    /// <summary>A renewal sent at <paramref name="sentAt"/> (a <see cref="TimeProvider"/> timestamp) succeeded.</summary>
    public void Renewed(long sentAt)
    {
        var until = sentAt + (long)(duration.TotalSeconds * time.TimestampFrequency);
        long current;
        do
        {
            current = Volatile.Read(ref _validUntil);
            if (until <= current)
            {
                break;
            }
        }
        while (Interlocked.CompareExchange(ref _validUntil, until, current) != current);

        Volatile.Write(ref _renewedAt, time.GetTimestamp());
    }

    private TimeSpan Ticks(long timestampDelta) => TimeSpan.FromSeconds((double)timestampDelta / time.TimestampFrequency);
}

namespace Keel.Runtime;

/// <summary>
/// The one retry delay every loop uses: starts at an initial delay, doubles up to a cap, with ±20 % jitter so that
/// processes that failed together (a database restart) do not all come back in the same millisecond.
/// </summary>
internal sealed class Backoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private TimeSpan _next;

    public Backoff(TimeSpan initial, TimeSpan max)
    {
        _initial = initial;
        _max = max;
        _next = initial;
    }

    /// <summary>The delays of a storage call that failed (50 ms to 5 s).</summary>
    public static Backoff ForStorage() => new(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));

    /// <summary>The delays of a loop whose pass failed (100 ms to 10 s).</summary>
    public static Backoff ForLoop() => new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));

    /// <summary>The delay to wait now; the following one doubles.</summary>
    public TimeSpan Next()
    {
        var current = _next;
        _next = TimeSpan.FromTicks(Math.Min(current.Ticks * 2, _max.Ticks));
        return TimeSpan.FromTicks((long)(current.Ticks * (0.8 + (Random.Shared.NextDouble() * 0.4))));
    }

    /// <summary>Back to the first delay after a success.</summary>
    public void Reset() => _next = _initial;
}

namespace Keel.Runtime;

/// <summary>
/// Decides how many jobs a worker may claim ahead of its threads (DESIGN §2: a worker holds at most threads plus the
/// configured claim-ahead). Claiming ahead pays when a round trip to the database is a large share of a job's run: a
/// thread that finishes starts the next job at once instead of waiting for the round trip that writes its completion
/// and claims again. It costs a waiting job its chance to run elsewhere, so the worker claims only enough ahead to keep
/// its threads busy for <see cref="RoundTripsCovered"/> round trips (Little's law: threads × round trips ÷ run), never
/// more than configured; so a job claimed ahead waits about that long for its thread, however short or long the runs.
/// It is off while recent runs are long — over <see cref="RunToRoundTrip"/> round trips, or over
/// <see cref="LongestRun"/> (a slow database is no reason to hold jobs behind long runs) — and until the worker has
/// seen <c>threads</c> runs end by themselves: a fresh process (the one that replaces a crashed one, say) claims only
/// what it can run, so a job that kills its process at once is there alone and charged alone.
/// </summary>
/// <param name="configured">The most jobs claimed ahead (<see cref="WorkerOptions.ClaimAhead"/>); 0 turns it off.</param>
/// <param name="threads">The worker's threads: the runs to see before claiming ahead.</param>
/// <param name="timestampFrequency">Ticks per second of the timestamps given (the worker's clock).</param>
internal sealed class ClaimAhead(int configured, int threads, long timestampFrequency)
{
    /// <summary>Claims ahead only while a run lasts at most this many of the worker's round trips.</summary>
    public const int RunToRoundTrip = 10;

    /// <summary>How many round trips of work the jobs claimed ahead cover: one to write the completions that free slots and
    /// claim again, one for the completions still being batched meanwhile.</summary>
    public const int RoundTripsCovered = 2;

    /// <summary>Never claims ahead while runs last longer than this on average, whatever the round trip.</summary>
    public static readonly TimeSpan LongestRun = TimeSpan.FromMilliseconds(100);

    // Exponentially weighted averages, in timestamp ticks: each new sample weighs one fifth.
    private const double Weight = 0.2;
    private readonly Lock _gate = new();
    private double _run = double.NaN;
    private double _roundTrip = double.NaN;
    private int _runs;
    private readonly double _longestRun = LongestRun.TotalSeconds * timestampFrequency;

    /// <summary>The most jobs claimed ahead.</summary>
    public int Configured => configured;

    /// <summary>How many jobs may be claimed ahead now.</summary>
    public int Current
    {
        get
        {
            lock (_gate)
            {
                return CurrentLocked();
            }
        }
    }

    /// <summary>A run ended by itself (succeeded or failed) after <paramref name="ticks"/>. Returns <see cref="Current"/>.</summary>
    public int RunEnded(long ticks)
    {
        lock (_gate)
        {
            _run = Average(_run, ticks);
            if (_runs < int.MaxValue)
            {
                _runs++;
            }

            return CurrentLocked();
        }
    }

    /// <summary>
    /// A job claimed ahead waited too long for a thread: runs have turned long (or stuck), whatever the average says.
    /// Claiming ahead stops until <c>threads</c> more runs have ended.
    /// </summary>
    public void Reset()
    {
        lock (_gate)
        {
            _runs = 0;
            _run = double.NaN;
        }
    }

    /// <summary>A round trip that wrote completions (and claimed along) took <paramref name="ticks"/>. Returns <see cref="Current"/>.</summary>
    public int RoundTrip(long ticks)
    {
        lock (_gate)
        {
            _roundTrip = Average(_roundTrip, ticks);
            return CurrentLocked();
        }
    }

    private static double Average(double average, long sample) => double.IsNaN(average) ? sample : average + (Weight * (sample - average));

    private int CurrentLocked()
    {
        if (configured <= 0 || _runs < threads || !(_run <= RunToRoundTrip * _roundTrip) || !(_run <= _longestRun))
        {
            return 0;
        }

        var enough = Math.Ceiling(threads * RoundTripsCovered * _roundTrip / Math.Max(_run, 1));
        return enough >= configured ? configured : (int)enough;
    }
}

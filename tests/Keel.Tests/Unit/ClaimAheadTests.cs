using Keel.Runtime;

namespace Keel.Tests.Unit;

public sealed class ClaimAheadTests
{
    // One tick a microsecond: 100 ms is 100,000 ticks.
    private const long Frequency = 1_000_000;

    [Fact]
    public void Runs_over_a_tenth_of_a_second_never_claim_ahead_however_slow_the_round_trip()
    {
        var gate = new ClaimAhead(configured: 4, threads: 1, Frequency);
        gate.RoundTrip(1_000_000); // a one-second round trip: ten of them would allow ten-second runs
        gate.RunEnded(100_000);
        Assert.Equal(4, gate.Current);
        gate.RunEnded(1_000_000);
        Assert.Equal(0, gate.Current);
    }

    [Fact]
    public void Claims_ahead_only_after_threads_short_runs_and_a_measured_round_trip()
    {
        var gate = new ClaimAhead(configured: 8, threads: 4, Frequency);
        Assert.Equal(0, gate.Current);
        for (var i = 0; i < 4; i++)
        {
            gate.RunEnded(10);
        }

        Assert.Equal(0, gate.Current); // no round trip seen yet: nothing to compare with
        gate.RoundTrip(100);
        Assert.Equal(8, gate.Current);
    }

    [Fact]
    public void A_fresh_worker_claims_only_for_its_threads_until_it_has_seen_as_many_runs_end()
    {
        var gate = new ClaimAhead(configured: 8, threads: 4, Frequency);
        gate.RoundTrip(100);
        for (var i = 0; i < 3; i++)
        {
            gate.RunEnded(10);
            Assert.Equal(0, gate.Current);
        }

        gate.RunEnded(10);
        Assert.Equal(8, gate.Current);
    }

    [Fact]
    public void Runs_longer_than_ten_round_trips_turn_it_off_and_short_ones_back_on()
    {
        var gate = new ClaimAhead(configured: 2, threads: 1, Frequency);
        gate.RoundTrip(100);
        gate.RunEnded(ClaimAhead.RunToRoundTrip * 100);
        Assert.Equal(2, gate.Current);
        gate.RunEnded(100_000);
        Assert.Equal(0, gate.Current);
        for (var i = 0; i < 30; i++)
        {
            gate.RunEnded(10);
        }

        Assert.Equal(2, gate.Current);
    }

    [Fact]
    public void A_reset_waits_for_threads_new_runs_and_zero_configured_is_never_on()
    {
        var gate = new ClaimAhead(configured: 3, threads: 2, Frequency);
        gate.RoundTrip(100);
        gate.RunEnded(1);
        gate.RunEnded(1);
        Assert.Equal(3, gate.Current);
        gate.Reset();
        gate.RunEnded(1);
        Assert.Equal(0, gate.Current);
        gate.RunEnded(1);
        Assert.Equal(3, gate.Current);

        var off = new ClaimAhead(configured: 0, threads: 1, Frequency);
        off.RoundTrip(100);
        off.RunEnded(1);
        Assert.Equal(0, off.Current);
    }
}

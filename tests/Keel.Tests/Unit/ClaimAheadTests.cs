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
        Assert.Equal(1, gate.Current); // two round trips hold a fifth of such a run: one job ahead is enough
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

    [Theory]
    [InlineData(4, 100, 10, 4)] // runs a tenth of a round trip: 4 threads × 2 round trips ÷ 0.1 = 80 wanted, 4 configured
    [InlineData(400, 100, 10, 80)] // the same with room: exactly the 80 that keep the threads busy for two round trips
    [InlineData(400, 100, 100, 8)] // runs as long as a round trip: 4 × 2 = 8
    [InlineData(400, 100, 300, 3)] // runs of three round trips: 8 ÷ 3, rounded up
    [InlineData(400, 100, 1000, 1)] // ten round trips, the longest that claims ahead at all: 0.8, rounded up
    public void Claims_only_as_many_ahead_as_keep_the_threads_busy_for_two_round_trips(int configured, long roundTrip, long run, int expected)
    {
        var gate = new ClaimAhead(configured, threads: 4, Frequency);
        gate.RoundTrip(roundTrip);
        for (var i = 0; i < 4; i++)
        {
            gate.RunEnded(run);
        }

        Assert.Equal(expected, gate.Current);
    }

    [Fact]
    public void The_number_claimed_ahead_follows_the_round_trip_as_it_grows_and_shrinks()
    {
        var gate = new ClaimAhead(configured: 1000, threads: 10, Frequency);
        for (var i = 0; i < 10; i++)
        {
            gate.RunEnded(50);
        }

        gate.RoundTrip(250); // 10 × 2 × 250 ÷ 50
        Assert.Equal(100, gate.Current);
        for (var i = 0; i < 40; i++)
        {
            gate.RoundTrip(2_500); // the network slowed: ten times the round trip wants ten times the jobs
        }

        Assert.InRange(gate.Current, 990, 1000);
        for (var i = 0; i < 40; i++)
        {
            gate.RoundTrip(250);
        }

        Assert.InRange(gate.Current, 100, 110);
    }
}

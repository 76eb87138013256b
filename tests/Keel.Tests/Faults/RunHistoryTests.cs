namespace Keel.Tests.Faults;

/// <summary>The overlap finder on made-up runs.</summary>
public sealed class RunHistoryTests
{
    [Fact]
    public void Runs_of_one_job_that_share_a_moment_overlap_and_runs_end_to_start_do_not()
    {
        Run[] runs =
        [
            new(1, 1, 100, "a", 1000, 2000, "cancel"),
            new(1, 2, 200, "b", 2000, 3000, "end"),
            new(2, 1, 100, "a", 1000, 2500, "process gone"),
            new(2, 2, 200, "b", 2400, 3000, "end"),
        ];

        var overlap = Assert.Single(RunHistory.Overlaps(runs));
        Assert.StartsWith("job 2 ran twice at once for 100 ms: attempt 1 in pid 100 (a)", overlap, StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_still_going_overlaps_every_later_run_of_its_job()
    {
        Run[] runs =
        [
            new(1, 1, 100, "a", 1000, null, "still running"),
            new(1, 2, 200, "b", 5000, 6000, "end"),
            new(1, 3, 300, "b", 7000, 8000, "end"),
        ];

        Assert.Equal(2, RunHistory.Overlaps(runs).Count);
    }

    [Fact]
    public void Jobs_under_one_limit_must_not_overlap_each_other()
    {
        Run[] runs =
        [
            new(1, 1, 100, "a", 1000, 2000, "end"),
            new(2, 1, 200, "b", 1500, 2500, "end"),
            new(3, 1, 200, "b", 2500, 3000, "end"),
            new(4, 1, 300, "b", 1200, 1300, "end"),
        ];

        var overlap = Assert.Single(RunHistory.Overlaps(runs, new HashSet<long> { 1, 2, 3 }, "k"));
        Assert.Contains("job 1", overlap, StringComparison.Ordinal);
        Assert.Contains("job 2", overlap, StringComparison.Ordinal);
    }
}

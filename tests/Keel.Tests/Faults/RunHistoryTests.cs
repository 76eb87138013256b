using Keel.TestInfrastructure;

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
        Assert.Equal(1000 + 1000, RunHistory.OverlapMilliseconds(runs, now: 9000));
    }

    [Fact]
    public void Overlap_time_counts_each_moment_of_a_job_once_however_many_runs_share_it_and_sums_over_jobs()
    {
        Run[] runs =
        [
            new(1, 1, 100, "a", 1000, 4000, "process gone"),
            new(1, 2, 200, "b", 2000, 5000, "end"),
            new(1, 3, 300, "b", 2500, 3000, "cancel"),
            new(2, 1, 100, "a", 1000, 2000, "end"),
            new(2, 2, 200, "b", 2000, 2600, "end"),
            new(3, 1, 100, "a", 1000, 1500, "cancel"),
            new(3, 2, 200, "b", 1400, 1600, "end"),
        ];

        // Job 1: two or more runs from 2000 to 4000; job 2: end to start, none; job 3: 1400 to 1500.
        Assert.Equal(2000 + 0 + 100, RunHistory.OverlapMilliseconds(runs));
    }

    [Fact]
    public void Run_log_lines_with_and_without_a_monotonic_timestamp_are_read_and_torn_lines_skipped()
    {
        var folder = Directory.CreateTempSubdirectory("keel-runlog-test-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "100.log"), RunLogFiles.Format("start", 7, 1, 100, 2000) + RunLogFiles.Format("end", 7, 1, 100, 3000) + "start 8 1");
            File.WriteAllText(Path.Combine(folder, "200.log"), RunLogFiles.Format("start", 9, 1, 200, 1000, monotonic: 123456));

            var lines = RunLogFiles.Read(folder);

            Assert.Equal([9L, 7L, 7L], lines.Select(l => l.JobId));
            Assert.Equal(123456, lines[0].Monotonic);
            Assert.Null(lines[1].Monotonic);
            Assert.Equal([100, 200], RunLogFiles.Pids(folder).Order());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
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

using Keel.Runtime;
using Keel.Storage.Conformance;

namespace Keel.Tests.Unit;

/// <summary>Progress reports coalesced to one write per interval, the latest value winning; none after the run.</summary>
public sealed class ProgressReporterTests
{
    [Fact]
    public async Task A_tight_loop_costs_one_write_per_interval_and_the_latest_value_is_written()
    {
        var written = new List<(double, string?)>();
        using var reporter = new ProgressReporter((f, m, _) => { lock (written) { written.Add((f, m)); } return Task.FromResult(true); }, TimeProvider.System, TimeSpan.FromHours(1));

        for (var i = 0; i <= 10_000; i++)
        {
            await reporter.ReportAsync(i / 10_000.0, $"{i}", default);
        }

        // The first is written at once; the rest wait for an interval that has not passed.
        Assert.Equal([(0.0, "0")], written);
        Assert.Equal(1, reporter.Writes);
    }

    [Fact]
    public async Task The_last_report_of_a_burst_is_written_once_the_interval_has_passed()
    {
        var written = new List<(double Fraction, string? Message)>();
        using var reporter = new ProgressReporter((f, m, _) => { lock (written) { written.Add((f, m)); } return Task.FromResult(true); }, TimeProvider.System, TimeSpan.FromMilliseconds(100));

        for (var i = 0; i <= 1000; i++)
        {
            await reporter.ReportAsync(i / 1000.0, null, default);
        }

        await Eventually.WaitUntilAsync(
            () =>
            {
                lock (written)
                {
                    return Task.FromResult(written.Any(w => w.Fraction == 1.0));
                }
            },
            TimeSpan.FromSeconds(30),
            "the latest report is flushed");
        Assert.Equal(0.0, written[0].Fraction);
        Assert.True(written.Count < 1001, $"{written.Count} writes for 1001 reports");
    }

    [Fact]
    public async Task Nothing_is_written_after_the_run_ended_and_a_failed_write_does_not_fail_the_job()
    {
        var writes = 0;
        var reporter = new ProgressReporter((_, _, _) => { Interlocked.Increment(ref writes); throw new InvalidOperationException("database down"); }, TimeProvider.System, TimeSpan.Zero);
        await reporter.ReportAsync(0.1, null, default); // swallowed
        reporter.Dispose();

        await reporter.ReportAsync(0.2, null, default);

        Assert.Equal(1, writes);
    }

    [Fact]
    public async Task A_job_gets_a_clear_error_for_a_fraction_out_of_range_or_a_long_message()
    {
        var context = new JobContext(7, "import", "default", 1, 5, DateTimeOffset.UtcNow, 1, null, null);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => context.ReportProgressAsync(1.5));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => context.ReportProgressAsync(double.NaN));
        var error = await Assert.ThrowsAsync<ArgumentException>(() => context.ReportProgressAsync(0.5, new string('x', 201)));
        Assert.Contains("at most 200 characters", error.Message, StringComparison.Ordinal);
    }
}

using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Tests.Unit;

/// <summary>The lines a run logs are bounded per attempt, and the bound is said in the log itself.</summary>
public sealed class JobLogBufferTests
{
    [Fact]
    public async Task Lines_past_the_bound_are_counted_not_kept_and_a_last_line_says_how_many()
    {
        var written = new List<JobLogLine>();
        var logs = new JobLogBuffer((lines, _) => { lock (written) { written.AddRange(lines); } return Task.FromResult(true); }, attempt: 3, maxLines: 3, maxBytes: 1024, TimeProvider.System, forward: null);

        for (var i = 0; i < 5; i++)
        {
            logs.LogInformation("line {N}", i);
        }

        await logs.CloseAsync(default);

        Assert.Equal(["line 0", "line 1", "line 2"], written.Take(3).Select(l => l.Message));
        Assert.All(written, l => Assert.Equal(3, l.Attempt));
        Assert.StartsWith("2 more lines were not kept: at most 3 lines", written[3].Message, StringComparison.Ordinal);
        Assert.Equal(4, written.Count);
        logs.LogInformation("after the run");
        Assert.Equal(4, written.Count);
    }

    [Fact]
    public async Task Lines_are_written_in_batches_while_the_run_goes_on_and_a_failed_batch_does_not_fail_it()
    {
        var batches = 0;
        var logs = new JobLogBuffer((_, _) => { Interlocked.Increment(ref batches); throw new InvalidOperationException("database down"); }, 1, 1000, 1 << 20, TimeProvider.System, null);
        for (var i = 0; i < JobLogBuffer.BatchSize; i++)
        {
            logs.LogInformation("line {N}", i);
        }

        await logs.CloseAsync(default);

        Assert.Equal(1, batches);
    }
}

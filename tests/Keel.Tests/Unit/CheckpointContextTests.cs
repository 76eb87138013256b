using System.Text.Json;

namespace Keel.Tests.Unit;

/// <summary>The checkpoint API of <see cref="JobContext"/> without a database: round trip, size limit, a lost claim.</summary>
public sealed class CheckpointContextTests
{
    private sealed record ImportState(int Next, string Note);

    private static JobContext Context(string? initial, Func<string, CancellationToken, Task<bool>> writer, int maxBytes = 1024)
        => new(7, "import", "default", 2, 5, DateTimeOffset.UtcNow, 42, null, null)
        {
            InitialCheckpoint = initial,
            CheckpointWriter = writer,
            JsonOptions = new JsonSerializerOptions(JsonSerializerDefaults.Web),
            MaxCheckpointBytes = maxBytes,
        };

    [Fact]
    public async Task The_earlier_attempts_checkpoint_is_read_until_this_run_saves_its_own()
    {
        var written = new List<string>();
        var context = Context("{\"next\":300,\"note\":\"before the crash\"}", (json, _) => { written.Add(json); return Task.FromResult(true); });
        Assert.True(context.HasCheckpoint);
        Assert.Equal(new ImportState(300, "before the crash"), context.GetCheckpoint<ImportState>());

        await context.SaveCheckpointAsync(new ImportState(400, "now"));

        Assert.Equal(new ImportState(400, "now"), context.GetCheckpoint<ImportState>());
        Assert.Equal("{\"next\":400,\"note\":\"now\"}", Assert.Single(written));
        Assert.Null(Context(null, (_, _) => Task.FromResult(true)).GetCheckpoint<ImportState>());
    }

    [Fact]
    public async Task A_checkpoint_over_the_limit_is_refused_with_a_message_that_names_the_size_and_the_option()
    {
        var writes = 0;
        var context = Context(null, (_, _) => { writes++; return Task.FromResult(true); }, maxBytes: 32);

        var error = await Assert.ThrowsAsync<ArgumentException>(() => context.SaveCheckpointAsync(new ImportState(1, new string('x', 100))));

        Assert.Contains("at most 32", error.Message, StringComparison.Ordinal);
        Assert.Contains("Keel:MaxCheckpointBytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, writes);
        Assert.False(context.HasCheckpoint);
    }

    [Fact]
    public async Task A_run_that_lost_its_claim_gets_ClaimLostException_and_keeps_its_last_saved_state()
    {
        var context = Context("{\"next\":100,\"note\":\"saved\"}", (_, _) => Task.FromResult(false));

        await Assert.ThrowsAsync<ClaimLostException>(() => context.SaveCheckpointAsync(new ImportState(200, "lost")));

        Assert.Equal(100, context.GetCheckpoint<ImportState>()!.Next);
    }
}

using System.Data.Common;
using System.Globalization;
using Keel.MySql;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using MySqlConnector;

namespace Keel.Tests.Conformance;

/// <summary>
/// How MariaDB walks the ready rows when a worker claims. A locking read locks each row it walks, rows of other queues
/// too (under READ COMMITTED only until it has tested them, but long enough): a claimer of such a queue that meets one
/// skips it and can take its queue for empty, so a worker serves a later queue entry first. Left to itself, the optimizer
/// walks every queue's rows in priority order to poll a queue whose rows were all just claimed — each idle poll, a walk
/// of the whole ready table.
/// </summary>
public sealed class MySqlClaimPlanTests : IAsyncLifetime
{
    private const int OtherJobs = 3;
    private const int QueueJobs = 3;
    private TestDatabase _db = null!;

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync(Engine.MySql);
        // Rows of other queues that sort first by priority: a walk in priority order passes them all.
        foreach (var job in Enumerable.Range(0, OtherJobs).Select(i => new NewJob("noop", $"other-{i}", "{}", -100 + i, 5, null))
                     .Concat(Enumerable.Range(0, QueueJobs).Select(i => new NewJob("noop", "mine", "{}", 5 + i, 5, null))))
        {
            await _db.Storage.JobsInsertAsync(new JobsInsertParams([job], null), default);
        }
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task A_pick_of_one_queue_walks_only_that_queue_s_rows(bool suspects, bool claimedDry)
    {
        if (suspects)
        {
            await _db.ExecuteAsync("UPDATE keel_ready_executions SET suspect = 1");
        }

        if (claimedDry)
        {
            // What claims leave behind: the queue's ready rows deleted (their index entries not purged yet).
            await _db.ExecuteAsync("DELETE FROM keel_ready_executions WHERE queue = 'mine'");
        }

        var sql = suspects ? ClaimsSql.JobsClaimSuspectExact : ClaimsSql.JobsClaimExact;
        var (key, examined, extra) = await AnalyzeAsync(sql, "mine", limit: 1);

        Assert.True(examined <= (claimedDry ? 0 : 1), $"the pick of one job of one queue examined {examined} ready rows ({key}, {extra})");
        Assert.Equal("keel_ready_poll_by_queue", key);
        Assert.DoesNotContain("filesort", extra, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_pick_of_every_queue_takes_the_rows_it_walks()
    {
        var (key, examined, extra) = await AnalyzeAsync(ClaimsSql.JobsClaimAll, "", limit: 2);

        Assert.True(examined <= 2, $"the pick of two jobs of every queue examined {examined} ready rows ({key}, {extra})");
        Assert.Equal("keel_ready_poll_all", key);
        Assert.DoesNotContain("filesort", extra, StringComparison.OrdinalIgnoreCase);
    }
    /// <summary>Runs the pick under ANALYZE in a transaction rolled back: the index used, rows examined, and the plan's notes.</summary>
    private async Task<(string Key, double Examined, string Extra)> AnalyzeAsync(string pick, string queue, int limit)
    {
        await using var connection = (MySqlConnection)await _db.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted);
        await using var analyze = new MySqlCommand("ANALYZE " + pick, connection, transaction);
        analyze.Parameters.AddWithValue("@queue", queue);
        analyze.Parameters.AddWithValue("@limit", limit);
        await using var reader = await analyze.ExecuteReaderAsync();
        string? key = null;
        double examined = double.NaN;
        string extra = "";
        while (await reader.ReadAsync())
        {
            if (Column(reader, "table") == "r")
            {
                key = Column(reader, "key");
                examined = double.Parse(Column(reader, "r_rows") ?? "NaN", CultureInfo.InvariantCulture);
                extra = Column(reader, "Extra") ?? "";
            }
        }

        await reader.CloseAsync();
        await transaction.RollbackAsync();
        Assert.NotNull(key);
        return (key, examined, extra);
    }

    private static string? Column(DbDataReader reader, string name)
    {
        var ordinal = reader.GetOrdinal(name);
        return reader.IsDBNull(ordinal) ? null : Convert.ToString(reader.GetValue(ordinal), CultureInfo.InvariantCulture);
    }
}

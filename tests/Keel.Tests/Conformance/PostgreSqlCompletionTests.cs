using System.Text.Json;
using Keel.PostgreSql;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Npgsql;
using NpgsqlTypes;

namespace Keel.Tests.Conformance;

/// <summary>
/// The completion statement on PostgreSQL: its fence matches claim, job and process together, and on the cached generic
/// plan the hot path uses it looks each claim up once — no join whose rows grow with the square of the batch.
/// </summary>
public sealed class PostgreSqlCompletionTests : PostgreSqlStoreTest
{
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private async Task<(long Process, IReadOnlyList<ClaimedJob> Claimed)> ClaimAsync(int jobs)
    {
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, jobs).Select(_ => new NewJob("test", "default", "{}", 0, 3, null))], T0), default);
        var process = await Storage.ProcessRegisterAsync(new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 1234, "test-host", T0, null, "{}", T0), default);
        var claimed = await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, jobs, T0), default);
        Assert.Equal(jobs, claimed.Count);
        return (process, claimed);
    }

    [Fact]
    public async Task A_claim_named_with_another_claims_job_completes_nothing()
    {
        var (process, claimed) = await ClaimAsync(2);

        var crossed = await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claimed[0].Ref with { JobId = claimed[1].JobId }, claimed[1].Ref with { JobId = claimed[0].JobId }], T0, true), default);

        Assert.Empty(crossed);
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL"));
        var matched = await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [.. claimed.Select(c => c.Ref)], T0, true), default);
        Assert.Equal(claimed.Select(c => c.ClaimId).Order(), matched.Order());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_completion_of_500_claims_looks_each_one_up_once_on_the_generic_plan(bool preserveFinishedJobs)
    {
        const int Claims = 500;
        var (process, claimed) = await ClaimAsync(Claims);

        // The statement as the hot path runs it (cached generic plan), explained with the rows each node saw, then rolled
        // back: a join that compared every claim with every other would remove about Claims² rows in its filter.
        await using var connection = new NpgsqlConnection(Db.ConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var generic = new NpgsqlCommand("SET LOCAL plan_cache_mode = force_generic_plan", connection, transaction))
        {
            await generic.ExecuteNonQueryAsync();
        }

        var sql = preserveFinishedJobs ? ClaimsSql.JobsCompletePreserve : ClaimsSql.JobsCompleteDelete;
        await using var explain = new NpgsqlCommand("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, connection, transaction);
        explain.Parameters.Add(new NpgsqlParameter<bool>("workflow_here", NpgsqlDbType.Boolean) { TypedValue = false });
        explain.Parameters.Add(new NpgsqlParameter<long[]>("claim_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. claimed.Select(c => c.ClaimId)] });
        explain.Parameters.Add(new NpgsqlParameter<long[]>("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. claimed.Select(c => c.JobId)] });
        explain.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = process });
        explain.Parameters.Add(new NpgsqlParameter("now", NpgsqlDbType.TimestampTz) { Value = DBNull.Value });
        if (preserveFinishedJobs)
        {
            explain.Parameters.Add(new NpgsqlParameter("runner", NpgsqlDbType.Text) { Value = "test" });
        }

        using var plan = JsonDocument.Parse((string)(await explain.ExecuteScalarAsync())!);
        await transaction.RollbackAsync();

        var root = plan.RootElement[0].GetProperty("Plan");
        var nodes = Flatten(root).ToList();
        var removed = nodes.Sum(n => n.TryGetProperty("Rows Removed by Join Filter", out var r) ? r.GetDouble() * (n.TryGetProperty("Actual Loops", out var l) ? l.GetDouble() : 1) : 0);
        Assert.True(removed <= Claims, $"the completion's joins filtered out {removed:0} rows for {Claims} claims: a claim is compared with others instead of looked up\n{root}");
        Assert.Equal(Claims, root.GetProperty("Actual Rows").GetDouble());
    }

    private static IEnumerable<JsonElement> Flatten(JsonElement node)
    {
        yield return node;
        if (node.TryGetProperty("Plans", out var children))
        {
            foreach (var child in children.EnumerateArray())
            {
                foreach (var descendant in Flatten(child))
                {
                    yield return descendant;
                }
            }
        }
    }
}

using System.Data.Common;
using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Keel.DashboardBench;

/// <summary>
/// Fills a migrated database with <c>count</c> jobs in one statement per table, spread over the last
/// <c>spread</c> of time, in the mix a busy production database has. A job's state follows from its id
/// (id mod 1000): 90 % finished, 2 % failed, 1 % discarded, 5 % ready, 1.5 % scheduled, 0.4 % blocked, 0.1 % in progress.
/// </summary>
internal static class BulkLoad
{
    private const string Queue = "CASE i % 8 WHEN 0 THEN 'default' WHEN 1 THEN 'mail' WHEN 2 THEN 'reports' WHEN 3 THEN 'billing' WHEN 4 THEN 'webhooks' WHEN 5 THEN 'exports' WHEN 6 THEN 'search' ELSE 'sms' END";

    private const string Kind = "CASE i % 6 WHEN 0 THEN 'emails.welcome' WHEN 1 THEN 'emails.receipt' WHEN 2 THEN 'reports.build' WHEN 3 THEN 'billing.charge' WHEN 4 THEN 'webhooks.deliver' ELSE 'search.reindex' END";

    private const string Args = """('{"order":' || i || ',"customer":"c' || (i % 5000) || '"}')""";

    private const string ErrorType = "CASE job_id % 4 WHEN 0 THEN 'System.TimeoutException' WHEN 1 THEN 'System.Net.Http.HttpRequestException' WHEN 2 THEN 'System.InvalidOperationException' ELSE 'Npgsql.PostgresException' END";

    private const string StackTrace = "   at Billing.Gateway.ChargeAsync(Card card, Decimal amount, CancellationToken ct) in /src/Billing/Gateway.cs:line 112\n   at Billing.ChargeCard.PerformAsync(ChargeArgs args, JobContext context, CancellationToken ct) in /src/Billing/ChargeCard.cs:line 31";

    public static async Task LoadAsync(IKeelStorage storage, DbConnection connection, long count, TimeSpan spread)
    {
        var now = DateTimeOffset.UtcNow;
        var start = now - spread;
        var sqlite = connection is SqliteConnection;
        var t = sqlite ? new SqliteTime(start, spread, count, now) as ITime : new PostgresTime();
        var series = sqlite
            ? "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @count) "
            : string.Empty;
        var from = sqlite ? "FROM n" : "FROM generate_series(1, @count) AS n(i)";
        await ExecuteAsync(connection, $"""
            {series}INSERT INTO keel_jobs (id, queue, kind, args, priority, scheduled_at, concurrency_key, attempts, max_attempts, created_at, finished_at, discarded_at, started_at)
            SELECT i, {Queue}, {Kind}, {(sqlite ? Args : Args + "::json")}, i % 3,
                   CASE WHEN i % 1000 BETWEEN 980 AND 994 THEN {t.Now("+", "(i % 3600)")} END,
                   CASE WHEN i % 1000 BETWEEN 995 AND 998 THEN 'billing.charge/' || (i % 50) END,
                   CASE WHEN i % 1000 < 900 THEN 1 WHEN i % 1000 < 920 THEN 5 ELSE 0 END, 5,
                   {t.Created("i")},
                   CASE WHEN i % 1000 < 900 THEN {t.Plus(t.Created("i"), 2.0)} END,
                   CASE WHEN i % 1000 BETWEEN 920 AND 929 THEN {t.Plus(t.Created("i"), 1.0)} END,
                   CASE WHEN i % 1000 < 900 THEN {t.Plus(t.Created("i"), 0.5)} END
            {from}
            """, count, start, spread, now);
        if (!sqlite)
        {
            await ExecuteAsync(connection, "SELECT setval(pg_get_serial_sequence('keel_jobs', 'id'), @count)", count, start, spread, now);
        }

        await ExecuteAsync(connection, "INSERT INTO keel_ready_executions (job_id, queue, priority, created_at) SELECT id, queue, priority, created_at FROM keel_jobs WHERE id % 1000 BETWEEN 930 AND 979", count, start, spread, now);
        await ExecuteAsync(connection, "INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at) SELECT id, queue, priority, scheduled_at, created_at FROM keel_jobs WHERE id % 1000 BETWEEN 980 AND 994", count, start, spread, now);
        await ExecuteAsync(connection, $"INSERT INTO keel_blocked_executions (job_id, queue, priority, concurrency_key, expires_at, created_at) SELECT id, queue, priority, concurrency_key, {t.Now("+", "900")}, created_at FROM keel_jobs WHERE id % 1000 BETWEEN 995 AND 998", count, start, spread, now);
        await ExecuteAsync(connection, $"""
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
            SELECT id, {ErrorType.Replace("job_id", "id", StringComparison.Ordinal)}, 'the payment gateway did not answer within 30 s (order ' || id || ')', '{StackTrace}', 5, NULL, {t.Plus("created_at", 3.0)}, queue
            FROM keel_jobs WHERE id % 1000 BETWEEN 900 AND 919
            """, count, start, spread, now);
        // Each failed job keeps the error of its last (fifth) attempt; one finished job in fifty failed once before succeeding.
        await ExecuteAsync(connection, $"""
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT job_id, attempt, exception_type, message, stack_trace, cause, created_at FROM keel_failed_executions
            UNION ALL
            SELECT id, 1, 'System.TimeoutException', 'timed out', NULL, NULL, {t.Plus("created_at", 0.2)} FROM keel_jobs WHERE id % 1000 < 900 AND id % 50 = 7
            """, count, start, spread, now);

        var workers = new List<long>();
        var supervisor = await storage.ProcessRegisterAsync(new ProcessRegisterParams("bench-supervisor", "Supervisor", 100, "bench-host", now, null, "{}", null), CancellationToken.None);
        for (var w = 0; w < 4; w++)
        {
            workers.Add(await storage.ProcessRegisterAsync(new ProcessRegisterParams($"bench-worker-{w}", "Worker", 101 + w, "bench-host", now, supervisor, "{\"queues\":[\"*\"],\"threads\":50}", null), CancellationToken.None));
        }

        await ExecuteAsync(connection, $"INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at) SELECT id, {workers[0].ToString(CultureInfo.InvariantCulture)} + (id / 1000) % 4, 1, {t.Now("-", "(id % 120)")} FROM keel_jobs WHERE id % 1000 = 999", count, start, spread, now);
        await storage.QueuePauseAsync(new QueuePauseParams("exports", true, null), CancellationToken.None);
        foreach (var (key, schedule) in new[] { ("nightly-report", "0 2 * * *"), ("hourly-sync", "0 * * * *"), ("cleanup", "*/5 * * * *") })
        {
            await storage.RecurringTaskUpsertAsync(new RecurringTaskUpsertParams(new RecurringTask(key, "reports.build", "{}", schedule, null, null, null, null, RecurringCatchUp.Skip, 1, false, null), null), CancellationToken.None);
        }

        // What autovacuum / a periodic ANALYZE would have done on a database that grew to this size.
        await ExecuteAsync(connection, sqlite ? "ANALYZE" : "VACUUM ANALYZE", count, start, spread, now);
    }

    private static async Task ExecuteAsync(DbConnection connection, string sql, long count, DateTimeOffset start, TimeSpan spread, DateTimeOffset now)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.CommandTimeout = 3600;
        if (command is NpgsqlCommand npgsql)
        {
            npgsql.Parameters.AddWithValue("count", count);
            npgsql.Parameters.AddWithValue("start", start);
            npgsql.Parameters.AddWithValue("step", spread / count);
            npgsql.Parameters.AddWithValue("now", now);
        }
        else
        {
            var parameters = ((SqliteCommand)command).Parameters;
            parameters.AddWithValue("@count", count);
        }

        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Time arithmetic in each engine's encoding, as SQL text.</summary>
    private interface ITime
    {
        string Created(string i);

        string Plus(string time, double seconds);

        string Now(string sign, string seconds);
    }

    private sealed class SqliteTime(DateTimeOffset start, TimeSpan spread, long count, DateTimeOffset now) : ITime
    {
        private readonly long _start = TimeEncoding.ToMicros(start);
        private readonly long _step = Math.Max(1, spread.Ticks / 10 / count);
        private readonly long _now = TimeEncoding.ToMicros(now);

        public string Created(string i) => $"({_start} + {i} * {_step})";

        public string Plus(string time, double seconds) => $"({time} + {(long)(seconds * 1_000_000)})";

        public string Now(string sign, string seconds) => $"({_now} {sign} {seconds} * 1000000)";
    }

    private sealed class PostgresTime : ITime
    {
        public string Created(string i) => $"(@start + {i} * @step)";

        public string Plus(string time, double seconds) => $"({time} + interval '{seconds.ToString(CultureInfo.InvariantCulture)} seconds')";

        public string Now(string sign, string seconds) => $"(@now {sign} {seconds} * interval '1 second')";
    }
}

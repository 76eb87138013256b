using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Keel.Bench;

/// <summary>
/// The floor under the latency scenario's pickup from another process on PostgreSQL, measured without Keel in the same
/// run: an enqueuer child process commits one durable row and its notification every 20 ms through plain Npgsql
/// (<c>WITH i AS (INSERT … RETURNING …) SELECT pg_notify(…)</c>), and the bench's process times each from before that
/// call to the notification on a raw LISTEN connection. No job queue can start a job from another process sooner than
/// its durable commit reaches the worker, so Keel's pickup minus this is what Keel itself costs.
/// </summary>
public static class PickupFloor
{
    /// <summary>The enqueuer child's system name for this arm (<c>__enqueue floor …</c>).</summary>
    public const string System = "floor";

    private const string Channel = "keel_bench_floor";

    /// <summary>The sorted floor latencies (ms) of <paramref name="jobs"/> rows after 20 warm-up rows, on a fresh database.</summary>
    public static async Task<double[]> MeasureAsync(BenchEngine engine, int jobs)
    {
        const int warmup = 20;
        var database = await engine.NewDatabaseAsync();
        try
        {
            await engine.ScalarAsync(database, $"CREATE TABLE {Channel} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sent_at bigint NOT NULL, warmup boolean NOT NULL); SELECT 0");
            var latencies = new ConcurrentQueue<double>();
            var received = 0;
            await using var listener = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database) { Pooling = false, ApplicationName = "keel-bench floor" }.ConnectionString);
            await listener.OpenAsync();
            listener.Notification += (_, e) =>
            {
                var now = Stopwatch.GetTimestamp();
                var parts = e.Payload.Split(',');
                if (parts[1] == "f")
                {
                    latencies.Enqueue(Stopwatch.GetElapsedTime(long.Parse(parts[0], CultureInfo.InvariantCulture), now).TotalMilliseconds);
                }

                Interlocked.Increment(ref received);
            };
            await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", listener))
            {
                await listen.ExecuteNonQueryAsync();
            }

            using var stop = new CancellationTokenSource();
            var waiting = Task.Run(async () =>
            {
                while (Volatile.Read(ref received) < warmup + jobs)
                {
                    await listener.WaitAsync(stop.Token);
                }
            });
            await Child.RunEnqueuerAsync(System, database, warmup, jobs);
            stop.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                await waiting;
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"floor: {Volatile.Read(ref received)} of {warmup + jobs} notifications arrived within 10 s of the last commit");
            }

            return latencies.Order().ToArray();
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>The child's half: <paramref name="warmup"/> then <paramref name="jobs"/> durable rows with their notification, one per tick.</summary>
    public static async Task SendAsync(string database, int warmup, int jobs, PeriodicTimer timer)
    {
        // The same Npgsql settings Keel gives its own connections: pooled, auto-prepared, no reset on close.
        var builder = new NpgsqlConnectionStringBuilder(database) { MaxAutoPrepare = 32, AutoPrepareMinUsages = 2, NoResetOnClose = true, ApplicationName = "keel-bench floor" };
        await using var source = NpgsqlDataSource.Create(builder.ConnectionString);
        for (var i = 0; i < warmup + jobs; i++)
        {
            await timer.WaitForNextTickAsync();
            var before = Stopwatch.GetTimestamp();
            await using var connection = await source.OpenConnectionAsync();
            await using var command = new NpgsqlCommand(
                $"WITH i AS (INSERT INTO {Channel} (sent_at, warmup) VALUES (@sent_at, @warmup) RETURNING sent_at, warmup) SELECT pg_notify('{Channel}', i.sent_at || ',' || left(i.warmup::text, 1)) FROM i",
                connection);
            command.Parameters.Add(new NpgsqlParameter<long>("sent_at", before));
            command.Parameters.Add(new NpgsqlParameter<bool>("warmup", i < warmup));
            await command.ExecuteNonQueryAsync();
        }
    }
}

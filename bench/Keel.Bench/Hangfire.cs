using System.Diagnostics;
using System.Transactions;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Npgsql;

namespace Keel.Bench;

/// <summary>
/// Hangfire 1.8 with Hangfire.PostgreSql 1.21, set up as a new application would be (compatibility level 1.8,
/// recommended serializer settings), with the queue poll interval tuned down to 100 ms (default 15 s). Everything
/// else is at Hangfire's defaults: native database transactions, no long polling (LISTEN/NOTIFY), a 30 min
/// invisibility timeout. Each run gets its own fresh database, so Hangfire's schema never meets Keel's tables.
/// </summary>
public static class HangfireBench
{
    public static readonly TimeSpan QueuePollInterval = TimeSpan.FromMilliseconds(100);

    private static int _configured;

    public static PostgreSqlStorage CreateStorage(string connectionString, bool prepareSchema = true)
    {
        if (Interlocked.Exchange(ref _configured, 1) == 0)
        {
            GlobalConfiguration.Configuration
                .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                .UseRecommendedSerializerSettings();
        }

        var options = new PostgreSqlStorageOptions
        {
            QueuePollInterval = QueuePollInterval,
            PrepareSchemaIfNecessary = prepareSchema,
            SchemaName = "hangfire",
        };
        return new PostgreSqlStorage(new NpgsqlConnectionFactory(connectionString, options), options);
    }

    /// <summary>A Hangfire server on the default queue with <paramref name="workerCount"/> workers.</summary>
    public static BackgroundJobServer StartServer(PostgreSqlStorage storage, int workerCount)
        => new(
            new BackgroundJobServerOptions
            {
                WorkerCount = workerCount,
                Queues = ["default"],
                ShutdownTimeout = TimeSpan.FromSeconds(10),
                ServerName = "keel-bench-" + Environment.ProcessId,
            },
            storage);

    /// <summary>Enqueues through <see cref="BackgroundJobClient"/>, all in one ambient transaction (Hangfire.PostgreSql enlists in it).</summary>
    public static void EnqueueInOneTransaction(BackgroundJobClient client, int from, int count)
    {
        using var scope = new TransactionScope(
            TransactionScopeOption.Required,
            new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted, Timeout = TimeSpan.FromMinutes(10) });
        for (var i = from; i < from + count; i++)
        {
            var n = i;
            client.Enqueue(() => HangfireJobs.Noop(n));
        }

        scope.Complete();
    }

    /// <summary>Hangfire jobs in <paramref name="state"/>, read from its job table.</summary>
    public static long CountJobs(string database, string state)
    {
        using var connection = new NpgsqlConnection(database);
        connection.Open();
        using var command = new NpgsqlCommand("SELECT count(*) FROM hangfire.job WHERE statename = @s", connection);
        command.Parameters.AddWithValue("s", state);
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>(one by one jobs/s, bulk jobs/s) for Hangfire in a fresh database.</summary>
    public static async Task<(double Single, double Bulk)> EnqueueAsync(BenchEngine engine, int single, int bulk)
    {
        var database = await engine.NewDatabaseAsync();
        try
        {
            var storage = CreateStorage(database);
            var client = new BackgroundJobClient(storage);
            for (var i = 0; i < 50; i++)
            {
                client.Enqueue(() => HangfireJobs.Noop(i)); // warm-up: JIT, connection pool
            }

            var watch = Stopwatch.StartNew();
            for (var i = 0; i < single; i++)
            {
                var n = i;
                client.Enqueue(() => HangfireJobs.Noop(n));
            }

            var singleRate = single / watch.Elapsed.TotalSeconds;
            watch.Restart();
            EnqueueInOneTransaction(client, 0, bulk);
            var bulkRate = bulk / watch.Elapsed.TotalSeconds;
            var enqueued = CountJobs(database, "Enqueued");
            if (enqueued != 50 + single + bulk)
            {
                throw new InvalidOperationException($"Hangfire has {enqueued} enqueued jobs, expected {50 + single + bulk}");
            }

            return (singleRate, bulkRate);
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>
    /// Bulk-enqueues <paramref name="jobs"/> no-op jobs (1,000 per transaction, untimed), starts a server and returns
    /// jobs/s from its start until every job is in the Succeeded state in the database.
    /// </summary>
    public static async Task<double> DrainAsync(BenchEngine engine, int jobs, int workerCount)
    {
        var database = await engine.NewDatabaseAsync();
        try
        {
            var storage = CreateStorage(database);
            var client = new BackgroundJobClient(storage);
            for (var done = 0; done < jobs; done += 1_000)
            {
                EnqueueInOneTransaction(client, done, Math.Min(1_000, jobs - done));
            }

            Counters.Reset();
            var watch = Stopwatch.StartNew();
            using (var server = StartServer(storage, workerCount))
            {
                var lastProgress = watch.Elapsed;
                var last = 0L;
                while (Interlocked.Read(ref Counters.Performed) < jobs)
                {
                    await Task.Delay(50);
                    var now = Interlocked.Read(ref Counters.Performed);
                    if (now != last)
                    {
                        (last, lastProgress) = (now, watch.Elapsed);
                    }
                    else if (watch.Elapsed - lastProgress > TimeSpan.FromSeconds(60))
                    {
                        throw new TimeoutException($"Hangfire: no progress for 60 s: {now:N0} of {jobs:N0} jobs performed");
                    }
                }

                while (CountJobs(database, "Succeeded") < jobs)
                {
                    if (watch.Elapsed - lastProgress > TimeSpan.FromSeconds(60))
                    {
                        throw new TimeoutException("Hangfire: jobs performed but not all recorded Succeeded within 60 s");
                    }

                    await Task.Delay(50);
                }

                var elapsed = watch.Elapsed;
                server.SendStop();
                return jobs / elapsed.TotalSeconds;
            }
        }
        finally
        {
            await engine.DropDatabaseAsync(database);
        }
    }

    /// <summary>
    /// An idle Hangfire server; one job every 20 ms, enqueued by this process or by an enqueuer child process; each
    /// job records enqueue→start of its method. Returns the sorted latencies (ms).
    /// </summary>
    public static async Task<double[]> LatencyAsync(BenchEngine engine, int jobs, int workerCount, bool crossProcess, bool smoke)
    {
        const int warmup = 20;
        var database = await engine.NewDatabaseAsync();
        try
        {
            var storage = CreateStorage(database);
            Counters.Reset();
            using var server = StartServer(storage, workerCount);
            await Task.Delay(smoke ? 200 : 1_000);
            if (crossProcess)
            {
                await Child.RunEnqueuerAsync("hangfire", database, warmup, jobs);
            }
            else
            {
                var client = new BackgroundJobClient(storage);
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
                for (var i = 0; i < warmup + jobs; i++)
                {
                    await timer.WaitForNextTickAsync();
                    var timestamp = Stopwatch.GetTimestamp();
                    var isWarmup = i < warmup;
                    client.Enqueue(() => HangfireJobs.Latency(timestamp, isWarmup));
                }
            }

            await Scenarios.WaitForPerformedAsync(warmup + jobs, "Hangfire latency");
            server.SendStop();
            return [.. Counters.Latencies.Order()];
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await engine.DropDatabaseAsync(database);
        }
    }
}

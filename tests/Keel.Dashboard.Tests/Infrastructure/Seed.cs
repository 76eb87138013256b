using System.Text.Json;
using Keel.Storage;

namespace Keel.Dashboard.Tests.Infrastructure;

/// <summary>
/// Puts jobs in every state the way Keel itself would: through the client (ready, scheduled, blocked) and through the
/// storage calls a worker makes (claim, fail, complete) under a registered process — no worker runs in these tests.
/// </summary>
public sealed class Seed(IKeelClient client, IKeelStorage storage, IKeelRecurring recurring)
{
    public const string StackTrace = """
           at Reports.ReportServer.RenderAsync(String name, CancellationToken ct) in /src/Reports/ReportServer.cs:line 88
           at Reports.BuildReport.PerformAsync(ReportArgs args, JobContext context, CancellationToken ct) in /src/Reports/BuildReport.cs:line 21
           at Keel.Runtime.JobExecutor.RunAsync(ClaimedJob job, CancellationToken ct)
        """;

    private int _names;

    public Task<long> ReadyAsync(string email = "ada@example.com", string? queue = null)
        => client.EnqueueAsync<SendWelcomeEmail, EmailArgs>(new EmailArgs(email, "sk_live_51Hsecret"), new EnqueueOptions { Queue = queue });

    public Task<long> ScheduledAsync(string name = "weekly", TimeSpan? delay = null)
        => client.ScheduleAsync<BuildReport, ReportArgs>(new ReportArgs(name), delay ?? TimeSpan.FromHours(2));

    /// <summary>Two jobs of one account under a limit of one: the first takes the permit (ready), the second is blocked.</summary>
    public async Task<(long Ready, long Blocked)> BlockedAsync(int account)
    {
        var ready = await client.EnqueueAsync<SyncAccount, AccountArgs>(new AccountArgs(account));
        var blocked = await client.EnqueueAsync<SyncAccount, AccountArgs>(new AccountArgs(account));
        return (ready, blocked);
    }

    public Task<long> ProcessAsync(string kind = "Worker", TimeSpan? heartbeatAge = null, long? supervisor = null, string hostname = "worker-host-1", int pid = 4242, string metadata = "{\"queues\":[\"*\"],\"threads\":10}")
        => storage.ProcessRegisterAsync(
            new ProcessRegisterParams($"{kind.ToLowerInvariant()}-{Interlocked.Increment(ref _names)}-{Guid.NewGuid().ToString("N")[..6]}", kind, pid, hostname, DateTimeOffset.UtcNow.AddHours(-3), supervisor, metadata, DateTimeOffset.UtcNow - (heartbeatAge ?? TimeSpan.Zero)),
            CancellationToken.None);

    /// <summary>Jobs of <paramref name="queue"/> claimed by <paramref name="processId"/> (enqueued here, in a queue of their own).</summary>
    public async Task<IReadOnlyList<ClaimedJob>> ClaimedAsync(long processId, string queue, int count = 1, string kind = "reports.build", DateTimeOffset? now = null, TimeSpan? wait = null)
    {
        await storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(i => new NewJob(kind, queue, JsonSerializer.Serialize(new { name = $"{queue}-{i}" }), 0, 5, null))], now), CancellationToken.None);
        return await storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.Parse(queue), count, now is { } at ? at + (wait ?? TimeSpan.Zero) : null), CancellationToken.None);
    }

    /// <summary>Jobs that failed for good in <paramref name="queue"/>, with the given error.</summary>
    public async Task<IReadOnlyList<long>> FailedAsync(int count, string queue = "reports", string exceptionType = "System.TimeoutException", string message = "the report server did not answer within 30 s")
    {
        var worker = await ProcessAsync();
        var claims = await ClaimedAsync(worker, queue, count);
        foreach (var claim in claims)
        {
            await storage.JobFailAsync(new JobFailParams(worker, claim.Ref, new FailureRecord(exceptionType, message, StackTrace), null, null), CancellationToken.None);
        }

        await storage.ProcessDeregisterAsync(new ProcessDeregisterParams(worker, null), CancellationToken.None);
        return [.. claims.Select(c => c.JobId)];
    }

    public async Task<IReadOnlyList<long>> FinishedAsync(int count, string queue = "newsletters")
    {
        var worker = await ProcessAsync();
        var claims = await ClaimedAsync(worker, queue, count, "emails.welcome");
        await storage.JobsCompleteAsync(new JobsCompleteParams(worker, [.. claims.Select(c => c.Ref)], null, true), CancellationToken.None);
        await storage.ProcessDeregisterAsync(new ProcessDeregisterParams(worker, null), CancellationToken.None);
        return [.. claims.Select(c => c.JobId)];
    }

    public Task AddRecurringAsync(string key, string schedule = "0 2 * * *")
        => recurring.AddOrUpdateAsync(key, new RecurringTaskOptions { Kind = "reports.build", Args = "{\"name\":\"nightly\"}", Schedule = schedule, Description = "The nightly sales report" });

    /// <summary>
    /// An hour of history, minute by minute, for the overview's charts: jobs enqueued, started after a short wait
    /// and finished, a few failing for good. Runs before anything else is enqueued in these queues.
    /// </summary>
    public async Task HistoryAsync(DateTimeOffset now)
    {
        var worker = await ProcessAsync(hostname: "worker-host-0");
        var random = new Random(42);
        string[] queues = ["mail", "reports", "default"];
        // Minute-aligned like the overview's buckets, so each minute's jobs land in one bar.
        var hour = new DateTimeOffset(now.UtcTicks - (now.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero).AddMinutes(-59);
        for (var minute = 0; minute < 59; minute++)
        {
            var at = hour.AddMinutes(minute).AddSeconds(2);
            var queue = queues[minute % queues.Length];
            var count = 6 + (int)(5 * (1 + Math.Sin(minute / 7.0))) + random.Next(4);
            // Latency grows in the middle of the hour, as if a backlog built up and drained.
            var wait = TimeSpan.FromSeconds(0.2 + (minute is > 25 and < 40 ? (minute - 25) * 0.8 : 0) + random.NextDouble());
            var claims = await ClaimedAsync(worker, queue, count, queue == "mail" ? "emails.welcome" : queue == "reports" ? "reports.build" : "invoices.send", at, wait);
            var failing = minute % 9 == 4 ? claims.Take(1 + random.Next(3)).ToList() : [];
            foreach (var claim in failing)
            {
                await storage.JobFailAsync(new JobFailParams(worker, claim.Ref, new FailureRecord(minute % 2 == 0 ? "System.TimeoutException" : "System.Net.Http.HttpRequestException", minute % 2 == 0 ? "the report server did not answer within 30 s" : "503 Service Unavailable from smtp.example.com", StackTrace), null, at + wait + TimeSpan.FromSeconds(3)), CancellationToken.None);
            }

            var done = claims.Except(failing).Select(c => c.Ref).ToList();
            await storage.JobsCompleteAsync(new JobsCompleteParams(worker, done, at + wait + TimeSpan.FromSeconds(1), true), CancellationToken.None);
        }

        await storage.ProcessDeregisterAsync(new ProcessDeregisterParams(worker, null), CancellationToken.None);
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Keel.Hosting;
using Keel.Hosting.Supervision;
using Keel.Runtime;
using Keel.Storage;
using Keel.Tests.EndToEnd;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keel.Tests.Telemetry;

/// <summary>Metrics, traces and health checks, against each engine.</summary>
public abstract class TelemetryTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly ActivitySource TestSource = new(ActivityRecorder.TestSourceName);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    /// <summary>A queue no other test uses, so process-wide instruments can be filtered to this test.</summary>
    private static string UniqueQueue() => "tel-" + Guid.NewGuid().ToString("N")[..10];

    private static IKeelClient Client(IHost host) => host.Services.GetRequiredService<IKeelClient>();

    private async Task<long> RegisterAsync(TimeSpan heartbeatAge)
        => await Db.Storage.ProcessRegisterAsync(
            new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 4242, "elsewhere", DateTimeOffset.UtcNow.AddHours(-1), null, "{}", DateTimeOffset.UtcNow - heartbeatAge),
            default);

    private async Task ClaimOnDeadProcessAsync(string queue, int count)
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(_ => new NewJob("count", queue, "{}", 0, 5, null))], null), default);
        Assert.Equal(count, (await Db.Storage.JobsClaimAsync(new JobsClaimParams(dead, new QueueFilter(QueueMatch.Exact, queue), count, null), default)).Count);
    }

    [Fact]
    public async Task A_claim_returns_the_ready_time_and_the_trace_parent_stored_at_enqueue_on_every_insert_path()
    {
        const string parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        var process = await RegisterAsync(TimeSpan.Zero);
        var ids = await Db.Storage.JobsInsertAsync(
            new JobsInsertParams(
                [
                    new NewJob("count", "plain", "{}", 0, 3, null) { TraceParent = parent },
                    new NewJob("count", "plain", "{}", 0, 3, null),
                ],
                null),
            default);
        var keyed = await Db.Storage.JobsInsertAsync(
            new JobsInsertParams([new NewJob("count", "keyed", "{}", 0, 3, null) { TraceParent = parent, UniqueKey = "count/1" }], null),
            default);
        await Task.Delay(20);

        var claimed = (await Db.Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, 10, null), default)).ToDictionary(c => c.JobId);

        Assert.Equal(parent, claimed[ids[0]].TraceParent);
        Assert.Null(claimed[ids[1]].TraceParent);
        Assert.Equal(parent, claimed[keyed[0]].TraceParent);
        Assert.All(claimed.Values, c =>
        {
            Assert.NotNull(c.ReadyAt);
            Assert.True(c.ReadyAt <= c.ClaimedAt, $"ready at {c.ReadyAt:O} is after the claim at {c.ClaimedAt:O}");
            Assert.True(c.ClaimedAt - c.ReadyAt!.Value >= TimeSpan.FromMilliseconds(10));
        });
    }

    [Fact]
    public async Task Counters_and_histograms_are_recorded_through_a_jobs_life()
    {
        using var recorder = new InstrumentRecorder();
        var queue = UniqueQueue();
        using var host = KeelHost.Build(Db, new Recorder(), o => o.Workers.Add(KeelHost.Worker(4)));
        await host.StartAsync();
        var client = Client(host);
        var options = new EnqueueOptions { Queue = queue };
        await client.EnqueueManyAsync([.. Enumerable.Range(0, 3).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i), options))]);
        var failing = await client.EnqueueAsync(JobRequest.Create<AlwaysFailsJob, CountArgs>(new CountArgs(0), options with { MaxAttempts = 2 }));
        await Eventually.WaitUntilAsync(async () => (await client.GetJobAsync(failing))!.State == JobState.Failed, Patience, "the failing job failed for good");
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Sum("keel.job.finished", queue) == 3), Patience, "three jobs finished");
        await host.StopAsync();

        Assert.Equal(4, recorder.Sum("keel.job.enqueued", queue));
        Assert.Equal(5, recorder.Sum("keel.job.claimed", queue)); // 3 + the failing job's 2 attempts
        Assert.Equal(3, recorder.Sum("keel.job.finished", queue));
        Assert.Equal(1, recorder.Sum("keel.job.retried", queue));
        Assert.Equal(1, recorder.Sum("keel.job.failed", queue));
        Assert.Equal("always-fails", Assert.Single(recorder.Of("keel.job.failed", queue)).Tags["keel.kind"]);
        Assert.Equal(5, recorder.Of("keel.job.duration", queue).Count());
        Assert.Equal(5, recorder.Of("keel.job.queue_latency", queue).Count());
        Assert.All(recorder.Of("keel.job.queue_latency", queue), m => Assert.InRange(m.Value, 0, 60));
        Assert.Equal("s", recorder.UnitOf("keel.job.duration"));
        Assert.Equal("s", recorder.UnitOf("keel.job.queue_latency"));
        Assert.Equal("{job}", recorder.UnitOf("keel.job.enqueued"));
    }

    [Fact]
    public async Task Batches_count_their_start_their_completion_and_their_callbacks()
    {
        using var recorder = new InstrumentRecorder();
        var queue = UniqueQueue();
        using var host = KeelHost.Build(Db, new Recorder(), o => o.Workers.Add(KeelHost.Worker(2)));
        await host.StartAsync();
        var client = Client(host);
        var batch = await client.StartBatchAsync(b =>
        {
            b.Add<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Queue = queue });
            b.Add<CountingJob, CountArgs>(new CountArgs(2), new EnqueueOptions { Queue = queue });
            b.OnComplete<CountingJob, CountArgs>(new CountArgs(3), new EnqueueOptions { Queue = queue });
            b.OnFailure<CountingJob, CountArgs>(new CountArgs(4), new EnqueueOptions { Queue = queue });
        });

        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Sum("keel.job.finished", queue) == 3), Patience, "the batch's jobs and its callback finished");
        await host.StopAsync();

        Assert.Equal(BatchState.Succeeded, (await client.GetBatchAsync(batch))!.State);
        Assert.Equal(2, recorder.Sum("keel.job.enqueued", queue)); // the batch's two jobs; its callbacks count in keel.batch.callbacks
        Assert.Contains(recorder.Measurements, m => m.Instrument == "keel.batch.started" && m.Unit == "{batch}");
        Assert.Contains(recorder.Measurements, m => m.Instrument == "keel.batch.completed" && m.Tags.GetValueOrDefault("keel.batch.outcome") == "succeeded");
        Assert.Contains(recorder.Measurements, m => m.Instrument == "keel.batch.callbacks" && m.Tags.GetValueOrDefault("keel.batch.event") == "complete");
    }

    [Fact]
    public async Task Operator_actions_count_discards_and_recoveries_by_cause()
    {
        using var recorder = new InstrumentRecorder();
        var queue = UniqueQueue();
        using var host = KeelHost.Build(Db, new Recorder(), o => o.ProcessJobs = false);
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await Client(host).EnqueueManyAsync([.. Enumerable.Range(0, 2).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i), new EnqueueOptions { Queue = queue }))]);
        Assert.Equal(2, await admin.ClearQueueAsync(queue));
        Assert.Equal(2, recorder.Sum("keel.job.discarded", queue)); // other tests discard concurrently: count this queue's only

        var claimQueue = UniqueQueue();
        await ClaimOnDeadProcessAsync(claimQueue, 1);
        var claim = Assert.Single(await admin.ListClaimsAsync(staleOnly: true));
        await admin.FailClaimsAsync([claim.ClaimId], "test");
        Assert.Contains(recorder.Measurements, m => m.Instrument == "keel.job.worker_lost" && m.Tags["keel.cause"] == "operator" && m.Tags["keel.outcome"] == "failed");
    }

    [Fact]
    public async Task Cancels_count_requests_and_how_runs_stopped_and_time_the_stop()
    {
        using var recorder = new InstrumentRecorder();
        var queue = UniqueQueue();
        using var host = KeelHost.Build(Db, new Recorder(), o =>
        {
            o.CancellationGrace = TimeSpan.FromMilliseconds(300);
            o.Workers.Add(KeelHost.Worker(2, queue));
        });
        var admin = host.Services.GetRequiredService<IKeelAdmin>();
        await host.StartAsync();
        var honours = await Client(host).EnqueueAsync<FencedJob, SleepArgs>(new SleepArgs(60_000), new EnqueueOptions { Queue = queue });
        var ignores = await Client(host).EnqueueAsync<IgnoresCancellationJob, SleepArgs>(new SleepArgs(20_000), new EnqueueOptions { Queue = queue });
        await Eventually.WaitUntilAsync(async () => (await admin.ListClaimsAsync()).Count(c => c.Queue == queue) == 2, Patience, "both run");

        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(honours));
        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(ignores));
        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Of("keel.job.cancelled", queue).Count() == 2), Patience, "both end cancelled");

        Assert.Equal(
            [RunCauses.CancelEscalated, RunCauses.CancelHonoured],
            recorder.Of("keel.job.cancelled", queue).Select(m => m.Tags["keel.outcome"]).Order());
        Assert.Equal(
            [RunCauses.CancelEscalated, RunCauses.CancelHonoured],
            recorder.Of("keel.job.cancel.time_to_stop", queue).Select(m => m.Tags["keel.outcome"]).Order());
        Assert.All(recorder.Of("keel.job.cancel.time_to_stop", queue), m => Assert.True(m.Value >= 0));
        Assert.Equal("s", recorder.UnitOf("keel.job.cancel.time_to_stop"));
        Assert.True(recorder.Measurements.Count(m => m.Instrument == "keel.job.cancel.requested" && m.Tags["keel.state"] == "claimed") >= 2);
        await host.StopAsync();
    }

    [Fact]
    public async Task Gauges_report_the_last_snapshot_read_from_the_database()
    {
        using var recorder = new InstrumentRecorder();
        var queue = UniqueQueue();
        await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("count", queue, "{}", 0, 3, null), new NewJob("count", queue, "{}", 0, 3, null)], null), default);
        await ClaimOnDeadProcessAsync(UniqueQueue(), 2);
        await RegisterAsync(TimeSpan.Zero);
        var options = new KeelOptions();
        var refresher = new TelemetrySnapshotRefresher(Db.Storage, options, NullLogger.Instance, new KeelClock(TimeProvider.System));

        Assert.True(KeelMetrics.GaugesEnabled);
        var snapshot = await refresher.RefreshAsync(default);
        Assert.Equal(2, snapshot.StaleClaims);
        Assert.Equal(1, snapshot.LiveProcesses);
        Assert.True(snapshot.OldestClaimAge >= TimeSpan.Zero);
        var depth = Assert.Single(snapshot.Queues, q => q.Name == queue);
        Assert.Equal(2, depth.Ready);

        // Other tests' hosts may publish their own snapshot meanwhile: retry until ours is the one observed.
        await Eventually.WaitUntilAsync(
            () =>
            {
                KeelMetrics.Snapshot = snapshot;
                recorder.Measurements.Clear();
                recorder.RecordObservables();
                var all = recorder.Measurements.ToList();
                return Task.FromResult(
                    all.Any(m => m.Instrument == "keel.queue.depth" && m.Tags.GetValueOrDefault("keel.queue") == queue && m.Value == 2)
                    && all.Any(m => m.Instrument == "keel.queue.oldest_ready_age" && m.Tags.GetValueOrDefault("keel.queue") == queue && m.Value >= 0)
                    && all.Any(m => m.Instrument == "keel.claim.stale" && m.Value == 2)
                    && all.Any(m => m.Instrument == "keel.process.live" && m.Value == 1)
                    && all.Any(m => m.Instrument == "keel.claim.oldest_age" && m.Unit == "s"));
            },
            Patience,
            "the gauges report the snapshot");
    }

    [Fact]
    public async Task The_perform_span_links_to_the_enqueue_span_stored_with_the_job()
    {
        using var activities = new ActivityRecorder();
        using var host = KeelHost.Build(Db, new Recorder(), o => o.Workers.Add(KeelHost.Worker(2)));
        await host.StartAsync();
        long id;
        var queue = UniqueQueue();
        ActivityTraceId requestTrace;
        using (var request = TestSource.StartActivity("request"))
        {
            Assert.NotNull(request);
            requestTrace = request.TraceId;
            id = await Client(host).EnqueueAsync(JobRequest.Create<CountingJob, CountArgs>(new CountArgs(1), new EnqueueOptions { Queue = queue }));
        }

        await Eventually.WaitUntilAsync(() => Task.FromResult(activities.Find("perform count", id, queue) is not null), Patience, "the perform span stopped");
        await host.StopAsync();

        var enqueue = activities.Find("enqueue count", id, queue);
        Assert.NotNull(enqueue);
        Assert.Equal(ActivityKind.Producer, enqueue.Kind);
        Assert.Equal(requestTrace, enqueue.TraceId);

        var perform = activities.Find("perform count", id, queue)!;
        Assert.Equal(ActivityKind.Consumer, perform.Kind);
        Assert.NotEqual(requestTrace, perform.TraceId);
        var link = Assert.Single(perform.Links);
        Assert.Equal(enqueue.TraceId, link.Context.TraceId);
        Assert.Equal(enqueue.SpanId, link.Context.SpanId);
        Assert.Equal("count", perform.GetTagItem("keel.kind"));
        Assert.Equal(1, perform.GetTagItem("keel.attempt"));
        Assert.NotNull(perform.GetTagItem("keel.queue"));
    }

    [Fact]
    public async Task Health_is_healthy_with_a_running_host_and_degraded_with_stale_claims()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSingleton(new Recorder());
        // The host's own worker and maintenance must leave the test's "dead" claim alone: a worker on another queue,
        // no maintenance (it would prune the dead process and recover its claim).
        builder.Services.AddKeel(k => k.UseStorage(_ => Db.NewStorage()).AddJob<CountingJob>().Configure(o =>
        {
            o.RunMaintenance = false;
            o.Workers.Add(new WorkerOptions { Queues = ["health-check-host-only"] });
        }));
        builder.Services.AddHealthChecks().AddKeel();
        using var host = builder.Build();
        await host.StartAsync();
        var health = host.Services.GetRequiredService<HealthCheckService>();
        var storage = host.Services.GetRequiredService<IKeelStorage>();
        await Eventually.WaitUntilAsync(() => Task.FromResult(HeartbeatTracker.For(storage).Entries.Count > 0), Patience, "the worker registered");

        var report = await health.CheckHealthAsync();
        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal(["keel-database", "keel-heartbeat", "keel-stale-claims"], report.Entries.Keys.Order(StringComparer.Ordinal));

        await ClaimOnDeadProcessAsync(UniqueQueue(), 1);
        report = await health.CheckHealthAsync();
        Assert.Equal(HealthStatus.Degraded, report.Status);
        Assert.Equal(HealthStatus.Degraded, report.Entries["keel-stale-claims"].Status);
        Assert.Equal(HealthStatus.Healthy, report.Entries["keel-database"].Status);
        var live = await health.CheckHealthAsync(r => r.Tags.Contains("live"));
        Assert.Equal(HealthStatus.Healthy, live.Status);
        await host.StopAsync();
    }

    [Fact]
    public async Task Health_is_unhealthy_without_a_database()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddKeel(k => k.UseStorage(_ => UnreachableStorage()));
        builder.Services.AddHealthChecks().AddKeel();
        using var host = builder.Build(); // Not started: the schema check would fail first.
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        Assert.Equal(HealthStatus.Unhealthy, report.Entries["keel-database"].Status);
        Assert.Equal(HealthStatus.Degraded, report.Entries["keel-stale-claims"].Status);
    }

    [Fact]
    public async Task The_supervisors_probe_endpoint_answers_live_and_ready()
    {
        var port = FreePort();
        var options = new KeelOptions { HealthCheckPort = port };
        var clock = new KeelClock(TimeProvider.System);
        await using (var endpoint = HealthEndpoint.Start(Db.Storage, options, clock, NullLogger.Instance, port))
        {
            Assert.NotNull(endpoint);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz/live")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz/ready")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("other")).StatusCode);
            await ClaimOnDeadProcessAsync(UniqueQueue(), 1);
            var ready = await http.GetAsync("healthz/ready");
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Contains("\"status\":\"Degraded\"", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var unreachable = UnreachableStorage();
        await using (var endpoint = HealthEndpoint.Start(unreachable, options, clock, NullLogger.Instance, port))
        {
            Assert.NotNull(endpoint);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("healthz/ready")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz/live")).StatusCode);
        }

        if (unreachable is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }

    private IKeelStorage UnreachableStorage() => Engine == Engine.Sqlite
        ? new Keel.Sqlite.SqliteStorage(new Keel.Sqlite.SqliteStorageOptions { ConnectionString = Path.Combine("/nonexistent-keel-dir", Guid.NewGuid().ToString("N"), "keel.db") })
        : new Keel.PostgreSql.PostgreSqlStorage(new Keel.PostgreSql.PostgreSqlStorageOptions { ConnectionString = $"Host=127.0.0.1;Port={FreePort()};Database=none;Username=none;Timeout=2" });

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}

public sealed class SqliteTelemetryTests : TelemetryTests
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlTelemetryTests : TelemetryTests
{
    protected override Engine Engine => Engine.PostgreSql;
}

using System.Reflection;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Tests.EndToEnd;

/// <summary>
/// Direct hand-off with real hosts on PostgreSQL: an idle worker's offer takes a job enqueued alone, which starts from
/// the notification; a lost notification costs a check, not the job; a worker that turns busy gives its offer back.
/// </summary>
public sealed class HandOffEndToEnd : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private TestDatabase _db = null!;

    // The metric is process-wide and test classes run in parallel: each test counts the hand-offs of its own queue.
    private readonly string _queue = "handoff-" + Guid.NewGuid().ToString("N")[..8];

    private EnqueueOptions OwnQueue => new() { Queue = _queue };

    private WorkerOptions OwnWorker(int threads) => KeelHost.Worker(threads, _queue);

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(Engine.PostgreSql);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private Task WaitForCountAsync(string sql, long expected)
        => Eventually.WaitUntilAsync(async () => await _db.ScalarAsync(sql) == expected, Patience, $"`{sql}` returns {expected}");

    private Task WaitForOpenOfferAsync() => WaitForCountAsync("SELECT count(*) FROM keel_hand_off_offers WHERE claim_id IS NULL", 1);

    [Fact]
    public async Task An_idle_worker_starts_jobs_enqueued_alone_through_its_offer_each_once()
    {
        var recorder = new Recorder();
        using var handedOff = new MetricRecorder("keel.job.handed_off");
        using var host = await KeelHost.StartAsync(_db, recorder, o => o.Workers.Add(OwnWorker(4)));
        var client = host.Services.GetRequiredService<IKeelClient>();

        var ids = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            await WaitForOpenOfferAsync();
            ids.Add(await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(i, "handed"), OwnQueue));
            await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Runs.ContainsKey(ids[^1])), Patience, $"job {ids[^1]} runs");
        }

        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 5);
        await host.StopAsync();

        Assert.Equal(5, handedOff.Sum("keel.queue", _queue));
        Assert.All(ids, id => Assert.Equal(1, recorder.Runs[id]));
        Assert.Equal(5, await _db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE attempts = 1"));
        Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_hand_off_offers"));
    }

    [Fact]
    public async Task A_hand_off_whose_notification_is_lost_starts_at_the_worker_s_next_check()
    {
        var recorder = new Recorder();
        using var handedOff = new MetricRecorder("keel.job.handed_off");
        DropsHandOffNotifications? drops = null;
        using var host = KeelHost.Build(_db, recorder, o => o.Workers.Add(OwnWorker(4)), wrapStorage: inner => (drops = DropsHandOffNotifications.Wrap(inner)).Proxy);
        await host.StartAsync();
        var client = host.Services.GetRequiredService<IKeelClient>();
        await WaitForOpenOfferAsync();

        var id = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1, "lost"), OwnQueue);
        Assert.Equal(1, await _db.ScalarAsync($"SELECT count(*) FROM keel_claimed_executions WHERE job_id = {id}")); // handed over

        await WaitForCountAsync($"SELECT count(*) FROM keel_jobs WHERE id = {id} AND finished_at IS NOT NULL", 1);
        await host.StopAsync();
        Assert.True(drops!.Dropped >= 1, "the hand-off notification was dropped");
        Assert.Equal(1, recorder.Runs[id]);
        Assert.Equal(1, handedOff.Sum("keel.queue", _queue));
        Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'released'"));
    }

    [Fact]
    public async Task A_job_handed_to_an_offer_whose_reply_was_lost_is_released_by_the_reconcile_and_runs_once()
    {
        var recorder = new Recorder();
        DropsHandOffNotifications? faults = null;
        using var host = KeelHost.Build(
            _db,
            recorder,
            o =>
            {
                o.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
                o.Workers.Add(OwnWorker(4));
            },
            wrapStorage: inner =>
            {
                faults = DropsHandOffNotifications.Wrap(inner);
                faults.DropNotifications = false;
                faults.LoseOfferReplies(int.MaxValue);
                return faults.Proxy;
            });
        await host.StartAsync();
        var client = host.Services.GetRequiredService<IKeelClient>();
        await Eventually.WaitUntilAsync(() => Task.FromResult(faults!.LostOfferReplies >= 1), Patience, "an offer commits and its reply is lost");

        // An offer the worker does not know takes the job (every offer's reply is lost until then; an enqueue that meets
        // one being replaced goes to ready, so try again). The worker's next offer replaces that one, which leaves the
        // claim to the heartbeat's reconcile: released uncharged, then claimed and run like any ready job.
        long id;
        var tries = 0;
        do
        {
            id = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(tries, "unseen"), OwnQueue);
        }
        while (await _db.ScalarAsync($"SELECT count(*) FROM keel_claimed_executions WHERE job_id = {id}") == 0 && ++tries < 10);
        faults!.LoseOfferReplies(0);
        Assert.True(tries < 10, "a job was handed to an offer whose reply was lost");
        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", tries + 1);
        await host.StopAsync();

        Assert.Equal(1, recorder.Runs[id]);
        Assert.Equal(1, await _db.ScalarAsync($"SELECT count(*) FROM keel_job_runs WHERE job_id = {id} AND outcome = 'released' AND cause = 'reconcile' AND NOT charged"));
        Assert.Equal(1, await _db.ScalarAsync($"SELECT count(*) FROM keel_jobs WHERE id = {id} AND attempts = 1"));
    }

    [Fact]
    public async Task A_worker_with_a_standing_offer_runs_a_backlog_on_every_thread_and_gives_the_offer_back()
    {
        var recorder = new Recorder();
        var worker = OwnWorker(2);
        worker.ClaimAhead = 0;
        using var host = await KeelHost.StartAsync(_db, recorder, o => o.Workers.Add(worker));
        var client = host.Services.GetRequiredService<IKeelClient>();
        await WaitForOpenOfferAsync();

        // Enqueued together: no hand-off; the worker claims with its one free slot, finds the queue full and withdraws.
        await client.EnqueueManyAsync([.. Enumerable.Range(0, 6).Select(_ => JobRequest.Create<SleepingJob, SleepArgs>(new SleepArgs(300), OwnQueue))]);
        await WaitForCountAsync("SELECT count(*) FROM keel_jobs WHERE finished_at IS NOT NULL", 6);
        await host.StopAsync();

        Assert.Equal(2, recorder.MaxConcurrent);
        Assert.Equal(6, recorder.Runs.Count);
        Assert.All(recorder.Runs.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task Without_direct_hand_off_an_idle_worker_offers_nothing_and_claims_as_before()
    {
        var recorder = new Recorder();
        using var handedOff = new MetricRecorder("keel.job.handed_off");
        var worker = OwnWorker(4);
        worker.DirectHandOff = false;
        using var host = await KeelHost.StartAsync(_db, recorder, o => o.Workers.Add(worker));
        var client = host.Services.GetRequiredService<IKeelClient>();
        await Task.Delay(500); // Idle passes, and a listener up, long enough to have offered had it been allowed to.

        var id = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1, "claimed"), OwnQueue);
        await WaitForCountAsync($"SELECT count(*) FROM keel_jobs WHERE id = {id} AND finished_at IS NOT NULL", 1);
        await host.StopAsync();

        Assert.Equal(0, await _db.ScalarAsync("SELECT count(*) FROM keel_hand_off_offers"));
        Assert.Equal(0, handedOff.Sum("keel.queue", _queue));
        Assert.Equal(1, recorder.Runs[id]);
    }
}

/// <summary>The store's interfaces a worker host uses for notifications and hand-offs, for <see cref="DispatchProxy"/>.</summary>
public interface INotifyingStorage : IKeelStorage, IJobNotifications, IJobHandOffs
{
}

/// <summary>
/// A PostgreSQL store whose hand-off notifications never reach the workers (as if the listen connection dropped them),
/// and whose offer calls can commit and then lose their reply.
/// </summary>
public class DropsHandOffNotifications : DispatchProxy
{
    private int _dropped;
    private int _offerRepliesToLose;
    private int _lostOfferReplies;

    /// <summary>True (the default) to drop every hand-off notification.</summary>
    public bool DropNotifications { get; set; } = true;

    /// <summary>How many offer calls committed and then threw instead of answering.</summary>
    public int LostOfferReplies => Volatile.Read(ref _lostOfferReplies);

    /// <summary>The next <paramref name="count"/> offer calls commit, then throw a transient error instead of answering.</summary>
    public void LoseOfferReplies(int count) => Interlocked.Exchange(ref _offerRepliesToLose, count);

    /// <summary>The real store.</summary>
    public IKeelStorage Inner { get; private set; } = null!;

    /// <summary>This proxy as the store.</summary>
    public IKeelStorage Proxy { get; private set; } = null!;

    /// <summary>How many hand-off notifications were dropped.</summary>
    public int Dropped => Volatile.Read(ref _dropped);

    public static DropsHandOffNotifications Wrap(IKeelStorage inner)
    {
        var proxy = Create<INotifyingStorage, DropsHandOffNotifications>();
        var self = (DropsHandOffNotifications)(object)proxy;
        self.Inner = inner;
        self.Proxy = proxy;
        return self;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (targetMethod.Name == nameof(IJobHandOffs.HandOffOfferAsync) && Interlocked.Decrement(ref _offerRepliesToLose) >= 0)
        {
            var offered = (Task<long?>)targetMethod.Invoke(Inner, args)!;
            return LoseReplyAsync(offered);
        }

        if (DropNotifications && targetMethod.Name == nameof(IJobHandOffs.TryReadHandOff) && ((IJobHandOffs)Inner).TryReadHandOff((string)args![0]!, out _))
        {
            Interlocked.Increment(ref _dropped);
            args[1] = null;
            return false;
        }

        try
        {
            return targetMethod.Invoke(Inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    private async Task<long?> LoseReplyAsync(Task<long?> offered)
    {
        await offered;
        Interlocked.Increment(ref _lostOfferReplies);
        throw new TimeoutException("the offer's reply was lost (injected)");
    }
}

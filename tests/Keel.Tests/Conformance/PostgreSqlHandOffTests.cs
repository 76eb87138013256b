using System.Collections.Concurrent;
using Keel.PostgreSql;
using Keel.Storage;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

/// <summary>
/// Direct hand-off on PostgreSQL, at the store: an idle worker's offer is taken by one job enqueued alone, which is
/// inserted already claimed and announced with its claim; everything else is enqueued as before.
/// </summary>
public sealed class PostgreSqlHandOffTests : PostgreSqlStoreTest
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private Task<long> RegisterAsync(TimeSpan? lease = null)
        => Storage.ProcessRegisterAsync(
            new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 1234, "test-host", DateTimeOffset.UtcNow, null, "{}", null)
            {
                LeaseDuration = lease ?? TimeSpan.FromSeconds(30),
            },
            default);

    private async Task<long> OfferAsync(long process, params string[] queues)
        => (await Storage.HandOffOfferAsync(new HandOffOfferParams(process, [.. (queues.Length == 0 ? ["*"] : queues).Select(QueueFilter.Parse)], null), default))!.Value;

    private async Task<long> EnqueueAsync(string queue = "default", string args = """{"n":1}""", DateTimeOffset? at = null)
        => (await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test.kind", queue, args, 3, 5, at)], null), default)).Single();

    private Task<long> CountAsync(string sql) => Db.ScalarAsync(sql);

    /// <summary>Listens on the store like a worker host, collecting every payload, until disposed.</summary>
    private sealed class Listener : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _loop;

        public Listener(PostgreSqlStorage storage)
        {
            _loop = storage.ListenAsync(
                payload =>
                {
                    if (payload == JobNotifications.Listening)
                    {
                        _listening.TrySetResult();
                    }

                    Payloads.Enqueue(payload);
                },
                _stop.Token);
        }

        public ConcurrentQueue<string> Payloads { get; } = new();

        public Task ListeningAsync() => _listening.Task.WaitAsync(Patience);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }

    [Fact]
    public async Task A_job_enqueued_alone_takes_the_offer_already_claimed_and_its_notification_carries_the_claim()
    {
        var process = await RegisterAsync();
        await using var listener = new Listener(Storage);
        await listener.ListeningAsync();
        var offer = await OfferAsync(process);

        var id = await EnqueueAsync(args: """{"text":"h\u00e9llo \"quoted\"","n":[1,2]}""");

        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_claimed_executions WHERE job_id = {id} AND process_id = {process} AND attempt = 1"));
        var claim = await CountAsync($"SELECT id FROM keel_claimed_executions WHERE job_id = {id}");
        Assert.Equal(claim, await CountAsync($"SELECT claim_id FROM keel_hand_off_offers WHERE id = {offer}"));

        HandOff? handOff = null;
        await Eventually.WaitUntilAsync(() => Task.FromResult(listener.Payloads.Any(p => Storage.TryReadHandOff(p, out handOff))), Patience, "the hand-off is announced");
        Assert.Equal((offer, process), (handOff!.OfferId, handOff.ProcessId));
        var job = handOff.Job;
        Assert.Equal((claim, id, "test.kind", "default", 3, 1, 5, 0), (job.ClaimId, job.JobId, job.Kind, job.Queue, job.Priority, job.Attempt, job.MaxAttempts, job.WorkerLosses));
        Assert.Equal("""{"text":"h\u00e9llo \"quoted\"","n":[1,2]}""", job.Args);
        Assert.DoesNotContain("default", listener.Payloads); // The queue itself was not woken: nothing became ready.

        // The worker's own check finds the same claim (the path a lost notification takes).
        var resolution = await Storage.HandOffResolveAsync(new HandOffResolveParams(process, offer, Withdraw: false), default);
        Assert.False(resolution.Open);
        Assert.Equal((job.ClaimId, job.JobId, job.Args), (resolution.Job!.ClaimId, resolution.Job.JobId, resolution.Job.Args));

        // The handed claim is an ordinary claim: its completion is fenced and finishes the job.
        var done = await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [job.Ref], null, true), default);
        Assert.Equal([claim], done);
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_jobs WHERE id = {id} AND finished_at IS NOT NULL"));
    }

    [Fact]
    public async Task An_offer_is_taken_once_and_later_jobs_are_ready_as_before()
    {
        var process = await RegisterAsync();
        await OfferAsync(process);

        var first = await EnqueueAsync();
        var second = await EnqueueAsync();

        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_claimed_executions WHERE job_id = {first}"));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_ready_executions WHERE job_id = {second}"));
        Assert.Equal(1, await CountAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task Only_a_due_plain_job_enqueued_alone_for_an_offered_unpaused_and_empty_queue_takes_an_offer()
    {
        var process = await RegisterAsync();
        var offer = await OfferAsync(process, "mail", "reports*");

        // Another queue; one not due; a call of two jobs; a job in a caller's transaction; a job with a key; a job too big
        // for a notification: none takes the offer.
        await EnqueueAsync("billing");
        await EnqueueAsync("mail", at: DateTimeOffset.UtcNow.AddHours(1));
        await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test.kind", "mail", "{}", 0, 5, null), new NewJob("test.kind", "mail", "{}", 0, 5, null)], null), default);
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_claimed_executions"));
        await Db.ExecuteAsync("DELETE FROM keel_ready_executions");

        await using (var connection = new Npgsql.NpgsqlConnection(Db.ConnectionString))
        {
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test.kind", "mail", "{}", 0, 5, null)], null, connection, transaction), default);
            await transaction.CommitAsync();
        }

        await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test.kind", "mail", "{}", 0, 5, null) { UniqueKey = "u1" }], null), default);
        await EnqueueAsync("mail", args: $$"""{"blob":"{{new string('x', 7_000)}}"}""");
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_claimed_executions"));

        // A paused queue: still not.
        await Storage.QueuePauseAsync(new QueuePauseParams("mail", true, null), default);
        await EnqueueAsync("mail");
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_claimed_executions"));

        // A prefix entry matches; the offer is taken.
        await EnqueueAsync("reports.daily");
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_claimed_executions c JOIN keel_jobs j ON j.id = c.job_id WHERE j.queue = 'reports.daily' AND c.process_id = {process}"));
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_hand_off_offers WHERE id = {offer} AND claim_id IS NOT NULL"));
    }

    [Fact]
    public async Task No_job_is_handed_to_a_process_whose_lease_ran_out_or_that_is_stopping()
    {
        var expired = await RegisterAsync(TimeSpan.FromMilliseconds(1));
        await OfferAsync(expired);
        await Task.Delay(50);
        var stopping = await RegisterAsync();
        await OfferAsync(stopping);
        await Storage.ProcessStoppingAsync(new ProcessStoppingParams(stopping, null), default);

        var id = await EnqueueAsync();

        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_ready_executions WHERE job_id = {id}"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task A_withdrawn_offer_is_taken_by_no_enqueue_and_a_withdrawal_returns_the_job_that_took_it()
    {
        var process = await RegisterAsync();
        var open = await OfferAsync(process);
        Assert.Equal(new HandOffResolution(true, null), await Storage.HandOffResolveAsync(new HandOffResolveParams(process, open, Withdraw: false), default));
        Assert.Equal(new HandOffResolution(false, null), await Storage.HandOffResolveAsync(new HandOffResolveParams(process, open, Withdraw: true), default));
        var ready = await EnqueueAsync();
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_ready_executions WHERE job_id = {ready}"));
        Assert.Equal(new HandOffResolution(false, null), await Storage.HandOffResolveAsync(new HandOffResolveParams(process, open, Withdraw: false), default));

        await Db.ExecuteAsync("DELETE FROM keel_ready_executions");
        var taken = await OfferAsync(process);
        var handed = await EnqueueAsync();
        var resolution = await Storage.HandOffResolveAsync(new HandOffResolveParams(process, taken, Withdraw: true), default);
        Assert.Equal((false, handed), (resolution.Open, resolution.Job?.JobId));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_hand_off_offers"));
    }

    [Fact]
    public async Task Withdrawing_offer_0_withdraws_every_offer_of_the_process_and_leaves_their_claims_to_the_heartbeat()
    {
        var process = await RegisterAsync();
        var other = await RegisterAsync();
        await OfferAsync(process);
        var handed = await EnqueueAsync();
        var kept = await OfferAsync(other);
        var handedClaim = await CountAsync($"SELECT id FROM keel_claimed_executions WHERE job_id = {handed}");
        Assert.Empty((await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(process, null) { ReturnClaims = true }, default)).ClaimIds!);

        Assert.Equal(new HandOffResolution(false, null), await Storage.HandOffResolveAsync(new HandOffResolveParams(process, 0, Withdraw: true), default));

        Assert.Equal([handedClaim], (await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(process, null) { ReturnClaims = true }, default)).ClaimIds);
        Assert.Equal(kept, await CountAsync("SELECT id FROM keel_hand_off_offers"));
        await Assert.ThrowsAsync<ArgumentException>(() => Storage.HandOffResolveAsync(new HandOffResolveParams(process, 0, Withdraw: false), default));
    }

    [Fact]
    public async Task A_heartbeat_leaves_a_claim_its_offer_records_to_the_offer_until_the_next_offer_replaces_it()
    {
        var process = await RegisterAsync();
        await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test.kind", "other", "{}", 0, 5, null)], null), default);
        var claimed = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.Parse("other"), 1, null), default));
        await OfferAsync(process, "default");
        var handed = await EnqueueAsync();
        var handedClaim = await CountAsync($"SELECT id FROM keel_claimed_executions WHERE job_id = {handed}");

        var beat = await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(process, null) { ReturnClaims = true }, default);
        Assert.Equal([claimed.ClaimId], beat.ClaimIds);

        await OfferAsync(process, "default");
        beat = await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(process, null) { ReturnClaims = true }, default);
        Assert.Equal([claimed.ClaimId, handedClaim], beat.ClaimIds!.Order());
    }

    [Fact]
    public async Task A_dead_process_s_handed_claim_is_recovered_like_any_other_and_its_offer_goes_with_it()
    {
        var process = await RegisterAsync();
        await OfferAsync(process);
        var handed = await EnqueueAsync();

        var result = await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(process, new WorkerLostCause("process-missing", "killed in a test"), null), default);

        Assert.NotNull(result);
        Assert.Equal(1, await CountAsync($"SELECT count(*) FROM keel_ready_executions WHERE job_id = {handed}"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM keel_hand_off_offers"));
        await Assert.ThrowsAsync<ProcessGoneException>(() => OfferAsync(process));
    }
}

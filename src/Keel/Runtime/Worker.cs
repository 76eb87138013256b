using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>What a worker does when it can no longer vouch for its runs in process mode.</summary>
internal static class WorkerExitCodes
{
    /// <summary>The lease ran out with a run still going (or a fenced run ignored its cancellation): uncharged.</summary>
    public const int LeaseLost = 75;

    /// <summary>A job ignored its cancellation (its timeout): that job is charged, its neighbours released uncharged.</summary>
    public const int JobUnresponsive = 76;

    /// <summary>
    /// A job cancelled by an operator did not stop within the grace: its cancel is written first, so only its neighbours
    /// are left, and they go back uncharged.
    /// </summary>
    public const int JobCancelled = 77;
}

/// <summary>
/// One worker: a process row with a lease, up to <see cref="WorkerOptions.Threads"/> claims at a time (<see cref="Slots"/>),
/// each run's outcome written by the <see cref="Completer"/>. It fences itself when its lease may run out, reconciles the
/// claims the database holds for it at every heartbeat, runs suspects alone, and on stop waits for every claim it holds.
/// </summary>
internal sealed class Worker
{
    private static readonly TimeSpan StopMarkTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan DeregisterTimeout = TimeSpan.FromSeconds(3);

    /// <summary>At most one progress write per run in this time (the issue's bound: a tight loop costs one write a second).</summary>
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(1);

    // A job claimed ahead that found no thread in this long goes back for another worker (runs turned long, say).
    private static readonly TimeSpan MaxWaitAhead = TimeSpan.FromMilliseconds(500);

    private readonly IKeelStorage _storage;
    private readonly JobExecutor _executor;
    private readonly JobSignal _signal;
    private readonly KeelOptions _options;
    private readonly WorkerOptions _worker;
    private readonly IReadOnlyList<QueueFilter> _queues;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly Wakeup _wakeup = new();
    private readonly Wakeup _cancelWakeup = new();
    private readonly ConcurrentDictionary<long, RunHandle> _active = new();
    private readonly ProcessRegistration _registration;
    private readonly Slots _slots;
    private readonly Action? _onPruned;
    private readonly Action<int>? _exitNow;
    private readonly ILogger _jobLogger;
    private readonly Lock _runsGate = new();
    private RunCancellation _runs = new();
    private Completer? _completer;
    private int _executing;
    private volatile bool _stopping;
    private long _nextSuspectCheck;
    private List<long> _orphanSuspects = [];
    private long _orphanBound;
    private int _stuckAtStop;
    private readonly ClaimAhead _claimAhead;
    private readonly Lock _threadsGate = new();
    private readonly Queue<WaitingJob> _waiting = new();

    /// <summary>
    /// Claims made with a batch of completions (from the first queue entry) not yet ended, by the number of their slot
    /// reservation (<see cref="Slots.Reservation.Seq"/>, increasing).
    /// </summary>
    private readonly List<long> _claimsAlong = [];
    private readonly Lock _claimsAlongGate = new();

    /// <summary>
    /// While passes stop before the later queue entries: the newest claim along in flight when the first of them
    /// stopped (they wait for it and the ones before it, not for those made since); 0 when none stopped.
    /// </summary>
    private long _deferredUntil;
    private int _running;
    private readonly IJobHandOffs? _handOffs;
    private readonly Action<HandOff> _onHandOff;
    private readonly HandOffOffer _offer = new();
    // True while rows of this process's offers may remain that no standing offer accounts for: one taken (its row names
    // the claim, which keeps that claim from the reconcile) or one committed unseen (a lost reply).
    private volatile bool _staleOffers;

    // onPruned, in process mode: what to do instead of registering anew when this worker learns it was pruned (stop the
    // process, so its supervisor starts a fresh one). exitNow, in process mode: exit the process at once with a code,
    // when a run can no longer be stopped any other way (it ignored its cancellation while the lease runs out, or past
    // its timeout). Both null in-process.
    public Worker(IKeelStorage storage, JobExecutor executor, JobSignal signal, KeelOptions options, WorkerOptions worker, ILogger logger, KeelClock clock, ProcessIdentityInfo? identity = null, Action? onPruned = null, Action<int>? exitNow = null, ILogger? jobLogger = null)
    {
        _storage = storage;
        _executor = executor;
        _signal = signal;
        _options = options;
        _worker = worker;
        _queues = [.. worker.EffectiveQueues.Select(QueueFilter.Parse)];
        _logger = logger;
        _clock = clock;
        _onPruned = onPruned;
        _exitNow = exitNow;
        _slots = new Slots(worker.Threads);
        _claimAhead = new ClaimAhead(worker.EffectiveClaimAhead, worker.Threads, clock.TimeProvider.TimestampFrequency);
        _jobLogger = jobLogger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _slots.Settled += OnSettled;
        _registration = new ProcessRegistration(storage, options, logger, clock, identity ?? ProcessIdentityInfo.New("Worker"), Metadata);
        _registration.Lost += _ => _wakeup.Set();
        _registration.Fenced += OnFenced;
        _registration.Unfenced += OnUnfenced;
        _registration.LeaseExpiring += OnLeaseExpiring;
        _registration.Reconcile = ReconcileAsync;
        _handOffs = worker.DirectHandOff ? storage as IJobHandOffs : null;
        _onHandOff = OnHandOff;
    }

    public string Name => _registration.Name;

    /// <summary>The current process row id; 0 before registration.</summary>
    public long ProcessId => _registration.Id;

    /// <summary>How many claims this worker holds.</summary>
    public int RunningCount => _slots.Held;

    private JobIsolation Isolation => _executor.Isolation;

    /// <summary>
    /// Registers, then claims and runs jobs until <paramref name="stoppingToken"/> is cancelled; then stops claiming,
    /// waits for every claim it holds for <see cref="KeelOptions.ShutdownTimeout"/>, cancels the rest, releases their
    /// claims uncharged and deregisters.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        _signal.Subscribe(_wakeup);
        _signal.SubscribeCancels(_cancelWakeup);
        _signal.SubscribeHandOffs(_onHandOff);
        _completer = new Completer(_storage, _logger, _registration.Outage, _clock, _options.PreserveFinishedJobs, _slots, () => _registration.Runner.ToJson())
        {
            PlanClaimAlong = PlanClaimAlong,
            BatchWritten = OnBatchWritten,
            RoundTripMeasured = ticks => _slots.Ahead = _claimAhead.RoundTrip(ticks),
        };

        // The heartbeat outlives the stop request: a worker draining its jobs must not look dead.
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = Task.Run(() => _registration.HeartbeatAsync(heartbeatStop.Token), CancellationToken.None);
        var cancels = Task.Run(() => WatchCancelsAsync(heartbeatStop.Token), CancellationToken.None);
        var waiting = _claimAhead.Configured > 0 ? Task.Run(() => GiveBackLongWaitingAsync(heartbeatStop.Token), CancellationToken.None) : Task.CompletedTask;
        try
        {
            await _registration.RegisterAsync(stoppingToken);
            Log.WorkerStarted(_logger, Name, ProcessId, string.Join(',', _worker.EffectiveQueues), _worker.Threads);
            _slots.Open();
            await Poller.RunAsync(PassAsync, _registration.Outage, "claim jobs", _clock.TimeProvider, _wakeup, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _signal.Unsubscribe(_wakeup);
            _signal.UnsubscribeHandOffs(_onHandOff);
            await StopAsync();
            await heartbeatStop.CancelAsync();
            _signal.UnsubscribeCancels(_cancelWakeup);
            await heartbeat;
            await cancels;
            await waiting;
        }
    }

    /// <summary>
    /// Claims once, up to the free slots, and starts the claimed jobs. Returns how many were claimed, and whether the
    /// pass stopped before a later queue entry because a claim made with a batch of completions was still in flight.
    /// </summary>
    private async Task<(int Claimed, bool Deferred)> RunOnceAsync(CancellationToken cancellationToken)
    {
        var claimedTotal = 0;
        for (var entry = 0; entry < _queues.Count; entry++)
        {
            if (!Isolation.MayClaim || _registration.IsFenced)
            {
                break;
            }

            if (entry > 0 && WaitsForClaimsAlong())
            {
                // The first entry may only have looked dry: rows the claim along with the completions has locked (and
                // will take, or give back if it fails) are skipped by this pass's pick, or were taken by a claim whose
                // reply is still on its way, and a later entry's jobs claimed now would start before them. The claim's
                // end wakes the loop to look again.
                return (claimedTotal, true);
            }

            var queue = _queues[entry];
            var reservation = _slots.Reserve(int.MaxValue);
            if (reservation is null)
            {
                break;
            }

            var claimed = await ClaimAsync(reservation, queue, suspects: false, cancellationToken);
            Launch(claimed);
            claimedTotal += claimed.Count;
            if (claimed.Count >= reservation.Count)
            {
                // This entry may hold more: a later one is looked at only once it runs dry (slots freed meanwhile
                // would otherwise go to a later entry), so the next pass starts again from the first.
                break;
            }
        }

        lock (_claimsAlongGate)
        {
            _deferredUntil = 0;
        }

        return (claimedTotal, false);
    }

    /// <summary>
    /// True while a claim along with completions made before the first pass that stopped for one is in flight. Claims
    /// along made since do not count, so a stream of completions (each batch claims along) never starves the later
    /// queue entries: a later entry waits at most for the claims along in flight when the first pass stopped.
    /// </summary>
    private bool WaitsForClaimsAlong()
    {
        lock (_claimsAlongGate)
        {
            if (_claimsAlong.Count == 0)
            {
                return false;
            }

            if (_deferredUntil == 0)
            {
                _deferredUntil = _claimsAlong.Max();
            }

            return _claimsAlong.Min() <= _deferredUntil;
        }
    }

    private async Task<TimeSpan> PassAsync(CancellationToken stoppingToken)
    {
        if (_registration.TakeLost())
        {
            await RecoverFromPruneAsync(stoppingToken);
            return TimeSpan.Zero;
        }

        if (_registration.IsFenced || !_slots.IsOpen)
        {
            return Timeout.InfiniteTimeSpan; // Unfenced or a freed slot wakes the loop.
        }

        if (!Isolation.MayClaim)
        {
            return _worker.PollingInterval; // A suspect is running alone in this host; its end wakes every worker.
        }

        if (await TryRunSuspectAsync(stoppingToken))
        {
            return TimeSpan.Zero;
        }

        var free = _slots.Free;
        if (free <= 0)
        {
            // Every slot is busy: a standing offer is still checked every polling interval, so that a job handed over
            // whose notification was lost does not wait for a slot to free.
            return await CheckOfferAsync(stoppingToken) ? _worker.PollingInterval : Timeout.InfiniteTimeSpan;
        }

        var (claimed, deferred) = await RunOnceAsync(stoppingToken);
        if (deferred)
        {
            return _worker.PollingInterval; // Not idle: the claim in flight wakes the loop when it ends.
        }

        if (claimed >= free)
        {
            // Busy: a standing offer would keep a slot from the claims, and no job would be handed over anyway while
            // jobs are ready in its queues.
            await WithdrawOfferAsync();
            return TimeSpan.Zero;
        }

        await OfferAsync(stoppingToken);
        return _worker.PollingInterval;
    }

    /// <summary>
    /// Idle (the last pass found its queues empty): checks the standing offer, or opens one. An offer reserves one slot
    /// until it is settled: taken (the job starts), withdrawn, or gone with the process row.
    /// </summary>
    private async Task OfferAsync(CancellationToken cancellationToken)
    {
        if (_handOffs is null || await CheckOfferAsync(cancellationToken))
        {
            return;
        }

        if (!_signal.Listening || _stopping || _registration.IsFenced || !Isolation.MayClaim)
        {
            return; // Nothing would announce a hand-off at once (or nothing may start): wait for the next idle pass.
        }

        // Never the last free slot: the worker's own claims always have one, so a standing offer never keeps it from
        // ready jobs whose notification it missed.
        if (_slots.Free < 2)
        {
            return;
        }

        var processId = ProcessId;
        var reservation = _slots.ReserveOffer();
        if (reservation is null)
        {
            return;
        }

        _offer.Opening();
        long? offerId = null;
        var answered = false;
        try
        {
            offerId = await _handOffs.HandOffOfferAsync(new HandOffOfferParams(processId, _queues, _clock.StorageNow), cancellationToken);
            answered = true;
        }
        catch (ProcessGoneException)
        {
            answered = true; // Nothing was written: the process row is gone, and its offers with it.
            _wakeup.Set(); // The next pass handles the prune.
        }
        finally
        {
            var early = _offer.Opened(offerId, processId, reservation, _clock.TimeProvider.GetTimestamp());
            if (offerId is null)
            {
                // Not opened, or the call failed: an offer it may have committed unseen is replaced by the next one or
                // withdrawn when the worker turns busy, and a claim recorded in it is then released by a heartbeat's
                // reconcile (the worker never ran it).
                _slots.Void(reservation);
                _staleOffers |= !answered;
            }
            else
            {
                _staleOffers = false; // The offer statement replaced any earlier offer of this process.
                if (early is { } notified)
                {
                    Settle(notified.Offer, notified.HandOff.Job); // Its notification came before the offer's reply.
                }
            }
        }
    }

    /// <summary>
    /// Reads the standing offer, once per polling interval: true while it stands. A taken offer whose notification did
    /// not come (a dropped listen connection) starts its job here; a gone one gives its slot back.
    /// </summary>
    private async Task<bool> CheckOfferAsync(CancellationToken cancellationToken)
    {
        var offer = _offer.Current;
        if (offer is null || _handOffs is null)
        {
            return false;
        }

        if (_clock.TimeProvider.GetElapsedTime(offer.CheckedAt) < _worker.PollingInterval)
        {
            return true;
        }

        var resolution = await _handOffs.HandOffResolveAsync(new HandOffResolveParams(offer.ProcessId, offer.Id, Withdraw: false), cancellationToken);
        if (resolution.Open)
        {
            return _offer.StillOpen(offer, _clock.TimeProvider.GetTimestamp());
        }

        Settle(_offer.Take(offer.Id), resolution.Job);
        return false;
    }

    /// <summary>
    /// Withdraws the standing offer (busy, or stopping): once the call returns no enqueue can take it; a job it was taken
    /// for starts (or, stopping, goes back unstarted). If the database cannot be reached, the offer's slot is given back
    /// and a claim the offer recorded is released by a heartbeat's reconcile once the next offer replaces it, or with the
    /// others when the worker deregisters, or recovered with its process.
    /// </summary>
    private async Task WithdrawOfferAsync()
    {
        var offer = _offer.Current;
        if (offer is null && _staleOffers && _handOffs is not null && !_stopping)
        {
            await WithdrawUnseenOffersAsync();
            return;
        }

        if (offer is null || _handOffs is null)
        {
            return;
        }

        ClaimedJob? job = null;
        try
        {
            using var deadline = new CancellationTokenSource(StopMarkTimeout);
            job = (await _handOffs.HandOffResolveAsync(new HandOffResolveParams(offer.ProcessId, offer.Id, Withdraw: true), deadline.Token)).Job;
        }
#pragma warning disable CA1031 // The stop goes on: the claim, if there is one, is released at deregistration or recovered.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _registration.Outage.Failed(e, "withdraw hand-off offer", TimeSpan.Zero);
        }

        Settle(_offer.Take(offer.Id), job);
    }

    /// <summary>
    /// Withdraws every offer of this process when none stands: a taken one's row (which keeps its claim from the
    /// reconcile, in case its job could not be given back), or one an offer call whose reply was lost may have committed
    /// unseen — an enqueue could take it, and the reconcile then releases that claim, uncharged. A stop needs none of
    /// this: its release takes every claim.
    /// </summary>
    private async Task WithdrawUnseenOffersAsync()
    {
        try
        {
            using var deadline = new CancellationTokenSource(StopMarkTimeout);
            await _handOffs!.HandOffResolveAsync(new HandOffResolveParams(ProcessId, 0, Withdraw: true), deadline.Token);
            _staleOffers = false;
        }
#pragma warning disable CA1031 // Tried again when the worker next turns busy, or replaced by its next offer.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _registration.Outage.Failed(e, "withdraw hand-off offers", TimeSpan.Zero);
        }
    }

    /// <summary>Gives the standing offer's slot back without reading it: the process row, and with it the offer, is gone.</summary>
    private void DropOffer()
    {
        if (_offer.Current is { } offer)
        {
            Settle(_offer.Take(offer.Id), null);
        }
    }

    /// <summary>A hand-off notification: this worker's offer, if it is the one taken, starts its job.</summary>
    private void OnHandOff(HandOff handOff) => Settle(_offer.Notified(handOff, ProcessId), handOff.Job);

    /// <summary>
    /// Settles an offer just taken from <see cref="_offer"/> (null: another report took it first, nothing to do): its
    /// slot holds <paramref name="job"/>, which starts, or is given back when no job came or it may not start.
    /// </summary>
    private void Settle(HandOffOffer.Standing? offer, ClaimedJob? job)
    {
        if (offer is null)
        {
            return;
        }

        if (job is null)
        {
            _slots.Void(offer.Reservation);
            return;
        }

        _slots.Fill(offer.Reservation, [job]);
        _staleOffers = true; // Its row still names the claim: removed when the worker next offers or turns busy.
        if (offer.ProcessId != ProcessId)
        {
            // Taken for a registration this worker no longer has: it was pruned, and its claims are recovered with it.
            Log.HandOffNotStarted(_logger, Name, offer.ProcessId, job.JobId, offer.Id, "the worker was pruned and registered anew");
            _slots.Settle(job.ClaimId);
            return;
        }

        if (!Isolation.MayClaim)
        {
            Log.HandOffNotStarted(_logger, Name, offer.ProcessId, job.JobId, offer.Id, "a suspect runs alone in this process");
            Release(offer.ProcessId, job, "suspect", "handed over while a suspect was to run alone in this process");
            return;
        }

        KeelMetrics.HandedOff.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        Launch([job]);
    }

    private async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(Slots.Reservation reservation, QueueFilter queue, bool suspects, CancellationToken cancellationToken)
    {
        var processId = ProcessId;
        try
        {
            var claimed = await StorageRetry.RunAsync(
                _storage,
                _registration.Outage,
                "claim jobs",
                ct => _storage.JobsClaimAsync(new JobsClaimParams(processId, queue, reservation.Count, _clock.StorageNow) { Suspects = suspects }, ct),
                cancellationToken);
            _slots.Fill(reservation, claimed);
            return claimed;
        }
        catch (ProcessGoneException)
        {
            _slots.Void(reservation);
            _wakeup.Set(); // The next pass handles the prune.
            return [];
        }
        catch
        {
            // The call may have committed before it failed: the next heartbeat reconciles (releases) what it claimed.
            _slots.Void(reservation);
            _registration.BeatSoon();
            throw;
        }
    }

    /// <summary>
    /// Every polling interval, a worker with a free slot looks for one suspect on its queues. It begins an isolation
    /// first (no worker of this host claims meanwhile), so that if one is there it can start alone once the runs beside
    /// it have ended.
    /// </summary>
    private async Task<bool> TryRunSuspectAsync(CancellationToken cancellationToken)
    {
        var now = _clock.TimeProvider.GetTimestamp();
        if (now < Interlocked.Read(ref _nextSuspectCheck))
        {
            return false;
        }

        Interlocked.Exchange(ref _nextSuspectCheck, now + (long)(SuspectCheckInterval.TotalSeconds * _clock.TimeProvider.TimestampFrequency));
        if (!Isolation.TryBegin())
        {
            return false;
        }

        var started = false;
        try
        {
            foreach (var queue in _queues)
            {
                var reservation = _slots.Reserve(1);
                if (reservation is null)
                {
                    return false;
                }

                var claimed = await ClaimAsync(reservation, queue, suspects: true, cancellationToken);
                if (claimed.Count > 0)
                {
                    RecordClaimed(claimed[0]);
                    started = true;
                    _ = Task.Run(() => RunIsolatedAsync(claimed[0], ProcessId), CancellationToken.None);
                    return true;
                }
            }

            return false;
        }
        finally
        {
            if (!started)
            {
                Isolation.End();
            }
        }
    }

    private TimeSpan SuspectCheckInterval => _worker.PollingInterval > TimeSpan.FromSeconds(1) ? _worker.PollingInterval : TimeSpan.FromSeconds(1);

    private async Task RunIsolatedAsync(ClaimedJob job, long processId)
    {
        try
        {
            var running = Isolation.Running;
            if (running > 0)
            {
                Log.SuspectIsolating(_logger, job.JobId, job.Kind, running);
            }

            await Isolation.WhenIdleAsync();
            lock (_threadsGate)
            {
                _running++;
            }

            Start(job, processId);
        }
        finally
        {
            _wakeup.Set();
        }
    }

    /// <summary>
    /// The claim to make in the round trip that writes a batch of completions: the slots the batch frees plus any idle
    /// ones, from the first queue entry (the loop serves the others when that one runs dry). When a suspect check is due,
    /// one slot is left for the loop to look with. None while stopping or fenced, or once the row may have been lost.
    /// </summary>
    private ClaimAlong? PlanClaimAlong(long processId, int freed)
    {
        if (_stopping || processId != ProcessId || _registration.IsFenced || !Isolation.MayClaim)
        {
            return null;
        }

        var keep = _clock.TimeProvider.GetTimestamp() >= Interlocked.Read(ref _nextSuspectCheck) ? 1 : 0;
        var reservation = _slots.Reserve(int.MaxValue, freed - keep);
        if (reservation is null)
        {
            return null;
        }

        lock (_claimsAlongGate)
        {
            // In flight until OnBatchWritten: the loop serves no later entry meanwhile (WaitsForClaimsAlong).
            _claimsAlong.Add(reservation.Seq);
        }

        return new ClaimAlong(reservation, new JobsClaimParams(processId, _queues[0], reservation.Count, _clock.StorageNow));
    }

    private void OnBatchWritten(ClaimAlong? along, IReadOnlyList<ClaimedJob> claimed)
    {
        if (along is not null)
        {
            try
            {
                _slots.Fill(along.Reservation, claimed);
                if (claimed.Count == 0)
                {
                    // Nothing claimed, or the combined write failed and the completions went alone: a claim that may
                    // have committed unseen is reconciled at the next heartbeat.
                    _registration.BeatSoon();
                }

                Launch(claimed);
            }
            finally
            {
                lock (_claimsAlongGate)
                {
                    _claimsAlong.Remove(along.Reservation.Seq);
                }
            }
        }

        // When that queue ran dry (or slots are left) the loop looks at the others.
        _wakeup.Set();
    }

    /// <summary>
    /// Starts claimed jobs on free threads; a job claimed ahead (none free) waits for the next thread that frees, in
    /// claim order.
    /// </summary>
    private void Launch(IReadOnlyList<ClaimedJob> jobs)
    {
        var processId = ProcessId;
        var now = _clock.TimeProvider.GetTimestamp();
        foreach (var job in jobs)
        {
            RecordClaimed(job);
            if (job.Suspect)
            {
                // Claimed along with others by a worker that did not know: release it so it is claimed alone.
                Release(processId, job, "suspect", "a suspect claimed beside other jobs goes back to be claimed alone");
                continue;
            }

            lock (_threadsGate)
            {
                // A stopping or fenced worker starts nothing: Begin gives the claim back at once, never left waiting.
                var mayStart = !_stopping && !_registration.IsFenced;
                if (mayStart && (_running >= _worker.Threads || _waiting.Count > 0))
                {
                    _waiting.Enqueue(new WaitingJob(job, processId, now));
                    continue;
                }

                _running++;
            }

            Start(job, processId);
        }
    }

    /// <summary>Runs a job on a thread taken for it; when it may not start, its claim goes back and the thread passes on.</summary>
    private void Start(ClaimedJob job, long processId)
    {
        if (!Begin(job, processId))
        {
            ThreadFreed();
        }
    }

    /// <summary>A thread is free: the longest-waiting job claimed ahead takes it, or it goes back.</summary>
    private void ThreadFreed()
    {
        while (true)
        {
            WaitingJob? next;
            lock (_threadsGate)
            {
                if (!_waiting.TryDequeue(out next))
                {
                    _running--;
                    return;
                }
            }

            if (Begin(next.Job, next.ProcessId, claimedAhead: true))
            {
                return;
            }
        }
    }

    /// <summary>
    /// The jobs claimed ahead and still waiting for a thread go back to their queues uncharged, never started (the
    /// worker stops, is fenced or pruned); with <paramref name="olderThan"/>, only those waiting since before it.
    /// </summary>
    private int GiveBackWaiting(string reason, string detail, long olderThan = long.MaxValue)
    {
        List<WaitingJob> back = [];
        lock (_threadsGate)
        {
            while (_waiting.TryPeek(out var first) && first.Since < olderThan)
            {
                back.Add(_waiting.Dequeue());
            }
        }

        CountReturnedAhead(back.Count, reason);
        foreach (var item in back)
        {
            GiveBack(item.ProcessId, item.Job, reason, detail);
        }

        return back.Count;
    }

    /// <summary>A job claimed ahead that waited <see cref="MaxWaitAhead"/> for a thread goes back, for another worker to run.</summary>
    private async Task GiveBackLongWaitingAsync(CancellationToken stoppingToken)
    {
        var provider = _clock.TimeProvider;
        var period = MaxWaitAhead / 5;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, provider, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var olderThan = provider.GetTimestamp() - (long)(MaxWaitAhead.TotalSeconds * provider.TimestampFrequency);
            if (GiveBackWaiting("claim-ahead", $"claimed ahead, it found no free thread of worker {Name} within {MaxWaitAhead.TotalMilliseconds:0} ms: back to its queue for another worker", olderThan) > 0)
            {
                _claimAhead.Reset();
                _slots.Ahead = 0;
                Log.ClaimAheadStopped(_logger, Name, ProcessId, MaxWaitAhead);
            }
        }
    }

    /// <summary>
    /// Starts a claimed job on a thread taken for it, unless the worker stopped or fenced since the claim, or its lease
    /// is running out, or — for a job claimed ahead — a suspect is to run alone in this host: then its claim goes back
    /// and this returns false.
    /// </summary>
    private bool Begin(ClaimedJob job, long processId, bool claimedAhead = false)
    {
        RunCancellation runs;
        lock (_runsGate)
        {
            runs = _runs;
        }

        // The lease is read on the clock, not only through the fence flag its watcher sets: a job that waited for a thread
        // (claimed ahead) in a process that was frozen past its lease must not start before that watcher has run.
        if (runs.IsCancellationRequested || _stopping || _registration.IsFenced || !_registration.Lease.Healthy)
        {
            var reason = runs.Reason ?? (_stopping ? "stop" : "lease-lost");
            if (job.Suspect)
            {
                Isolation.End();
            }

            if (claimedAhead)
            {
                CountReturnedAhead(1, reason);
            }

            GiveBack(processId, job, reason, $"claimed but not started: {Describe(reason)}");
            return false;
        }

        if (!claimedAhead)
        {
            Isolation.RunStarted(job.ClaimId, job.Suspect);
        }
        else if (!Isolation.TryRunStarted(job.ClaimId))
        {
            CountReturnedAhead(1, "suspect");
            Release(processId, job, "suspect", "claimed ahead but not started: a suspect is to run alone in this process");
            return false;
        }

        Interlocked.Increment(ref _executing);
        _ = Task.Run(() => RunJobAsync(job, processId, runs), CancellationToken.None);
        return true;
    }

    private async Task RunJobAsync(ClaimedJob job, long processId, RunCancellation runs)
    {
        using var activity = KeelTracing.StartPerform(job);
        using var handle = new RunHandle(job, runs);
        var logs = new JobLogBuffer(
            (lines, ct) => _storage.JobLogsAppendAsync(new JobLogsAppendParams(processId, job.Ref, lines), ct),
            job.Attempt,
            _options.MaxJobLogLines,
            _options.MaxJobLogBytes,
            _clock.TimeProvider,
            _jobLogger);
        using var progress = new ProgressReporter(
            (fraction, message, ct) => _storage.JobProgressReportAsync(new JobProgressParams(processId, job.Ref, fraction, message, _clock.StorageNow), ct),
            _clock.TimeProvider,
            ProgressInterval);
        _active[job.ClaimId] = handle;
        Task? abandoned = null;
        try
        {
            var started = _clock.TimeProvider.GetTimestamp();
            var control = new RunControl(handle.Token, () => handle.Reason, _options.CancellationGrace, ct => ClaimHeldAsync(job, processId, ct), limit => Log.JobTimedOut(_logger, job.JobId, job.Kind, limit), () => handle.CancelMessage, (json, ct) => SaveCheckpointAsync(job, processId, json, ct), progress.ReportAsync, logs, (json, ct) => SaveResultAsync(job, processId, json, ct));
            var outcome = await _executor.RunAsync(job, control);
            _active.TryRemove(job.ClaimId, out _);
            if (outcome.Result is RunResult.Succeeded or RunResult.Failed && handle.CancelMessage is null)
            {
                _slots.Ahead = _claimAhead.RunEnded(_clock.TimeProvider.GetTimestamp() - started);
            }

            await CloseLogAsync(logs);
            if (KeelMetrics.Duration.Enabled)
            {
                KeelMetrics.Duration.Record(
                    _clock.TimeProvider.GetElapsedTime(started).TotalSeconds,
                    KeelMetrics.QueueTag(job.Queue),
                    KeelMetrics.KindTag(job.Kind),
                    new("keel.outcome", outcome.Result switch { RunResult.Succeeded => "succeeded", RunResult.Failed => "failed", _ => "interrupted" }));
            }

            // A cancelled run that returned any way but success ends cancelled (a success wins: it finished first). A run
            // whose process was pruned meanwhile has no claim left to write under: recovery honoured the request.
            if (handle.CancelMessage is { } cancelMessage && outcome.Result != RunResult.Succeeded && runs.Reason != "pruned")
            {
                activity?.SetTag("keel.outcome", handle.Resumes ? "resumed" : "cancelled");
                RecordTimeToStop(job, handle, outcome.Result == RunResult.Unresponsive ? RunCauses.CancelEscalated : RunCauses.CancelHonoured);
                if (outcome.Result == RunResult.Unresponsive)
                {
                    abandoned = outcome.Abandoned;
                    if (handle.Resumes)
                    {
                        ResumeUnresponsive(job, processId, cancelMessage, abandoned);
                    }
                    else
                    {
                        await CancelUnresponsiveAsync(job, processId, cancelMessage);
                    }
                }
                else if (handle.Resumes)
                {
                    KeelMetrics.Cancelled.Add(1, new KeyValuePair<string, object?>("keel.outcome", RunCauses.CancelResumed), KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
                    Release(processId, job, RunCauses.CancelResumed, $"{cancelMessage} (stopped to resume: back to its queue with its checkpoint)");
                }
                else
                {
                    _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Cancelled) { Ending = new RunEnding(RunOutcomes.Cancelled, RunCauses.CancelHonoured, cancelMessage) });
                }

                return;
            }

            switch (outcome.Result)
            {
                case RunResult.Succeeded:
                    activity?.SetTag("keel.outcome", "succeeded");
                    _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Finished));
                    break;
                case RunResult.Failed:
                    activity?.SetStatus(ActivityStatusCode.Error, outcome.Error?.Message);
                    activity?.SetTag("error.type", outcome.Error?.GetType().FullName);
                    activity?.SetTag("keel.outcome", "failed");
                    _completer!.Post(Failure(processId, job, outcome));
                    break;
                case RunResult.Interrupted:
                    activity?.SetTag("keel.outcome", "interrupted");
                    Log.JobInterrupted(_logger, job.JobId, job.Kind);
                    GiveBack(processId, job, outcome.Reason ?? "stop", $"interrupted: {Describe(outcome.Reason ?? "stop")}");

                    break;
                default:
                    activity?.SetTag("keel.outcome", "unresponsive");
                    abandoned = outcome.Abandoned;
                    await UnresponsiveAsync(job, processId, outcome);
                    break;
            }
        }
#pragma warning disable CA1031 // A job's failure must never take the worker down; its claim goes back.
        catch (Exception e)
#pragma warning restore CA1031
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            Log.WorkerLoopError(_logger, e, Name, TimeSpan.Zero);
            Release(processId, job, "worker-error", "the worker failed around this run: " + e.Message);
        }
        finally
        {
            _active.TryRemove(job.ClaimId, out _);
            ThreadFreed();
            if (abandoned is null || abandoned.IsCompleted)
            {
                Interlocked.Decrement(ref _executing);
            }
            else
            {
                _ = abandoned.ContinueWith(_ => Interlocked.Decrement(ref _executing), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    /// <summary>
    /// A cancelled run that did not return within the grace. In-process its slot is taken back and the cancel written;
    /// its code may run on. In process mode the cancel is written first (so the job is not recovered as a lost one), then
    /// the worker exits to be replaced: the supervisor sends its other jobs back uncharged.
    /// </summary>
    private async Task CancelUnresponsiveAsync(ClaimedJob job, long processId, string cancelMessage)
    {
        Log.JobIgnoresCancellation(_logger, job.JobId, job.Kind, _options.CancellationGrace, Describe("cancelled"));
        var ending = new RunEnding(RunOutcomes.Cancelled, RunCauses.CancelEscalated, $"{cancelMessage} (did not stop within {_options.CancellationGrace} of being cancelled: {(_exitNow is null ? "abandoned, its code may still have been running" : "its process was replaced")})");
        if (_exitNow is null)
        {
            Log.JobAbandoned(_logger, job.JobId, job.Kind, Describe("cancelled"));
            _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Cancelled) { Ending = ending });
            return;
        }

        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            if (await _storage.JobCancelFinishAsync(new JobCancelFinishParams(processId, job.Ref, ending, _clock.StorageNow) { Runner = _registration.Runner.ToJson() }, deadline.Token))
            {
                KeelMetrics.Cancelled.Add(1, new KeyValuePair<string, object?>("keel.outcome", RunCauses.CancelEscalated), KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
            }
        }
#pragma warning disable CA1031 // Unwritten, the claim still carries the request: the supervisor's recovery discards the job.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _registration.Outage.Failed(e, "cancel job", TimeSpan.Zero);
        }

        Log.WorkerReplacedForCancel(_logger, Name, processId, job.JobId, job.Kind, Math.Max(0, _slots.Held - 1));
        _exitNow(WorkerExitCodes.JobCancelled);
    }

    /// <summary>
    /// A run cancelled to resume that did not return within the grace. Its job must not run twice at once, so in-process
    /// the claim (and the slot) stays with the run until its code returns, then the job goes back. In process mode the
    /// worker exits to be replaced, and its supervisor puts this job back with its other ones, uncharged.
    /// </summary>
    private void ResumeUnresponsive(ClaimedJob job, long processId, string cancelMessage, Task? abandoned)
    {
        Log.JobIgnoresCancellation(_logger, job.JobId, job.Kind, _options.CancellationGrace, Describe("resume"));
        KeelMetrics.Cancelled.Add(1, new KeyValuePair<string, object?>("keel.outcome", RunCauses.CancelResumed), KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        if (_exitNow is null)
        {
            var detail = $"{cancelMessage} (stopped to resume: back to its queue with its checkpoint once its code returned, {_options.CancellationGrace} or more after being asked)";
            if (abandoned is null || abandoned.IsCompleted)
            {
                Release(processId, job, RunCauses.CancelResumed, detail);
            }
            else
            {
                _ = abandoned.ContinueWith(_ => Release(processId, job, RunCauses.CancelResumed, detail), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }

            return;
        }

        // Nothing is written first: released before the exit, the job could start in another child while this one's code
        // still runs. The supervisor sends it back with the process's other claims, uncharged, once this child is gone.
        Log.WorkerReplacedForCancel(_logger, Name, processId, job.JobId, job.Kind, Math.Max(0, _slots.Held - 1));
        _exitNow(WorkerExitCodes.JobCancelled);
    }

    private void RecordTimeToStop(ClaimedJob job, RunHandle handle, string outcome)
    {
        if (KeelMetrics.CancelTimeToStop.Enabled && handle.CancelledAt is { } at)
        {
            KeelMetrics.CancelTimeToStop.Record(_clock.TimeProvider.GetElapsedTime(at).TotalSeconds, new KeyValuePair<string, object?>("keel.outcome", outcome), KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        }
    }

    /// <summary>
    /// While this worker runs jobs, reads which of its claims were asked to stop every
    /// <see cref="KeelOptions.CancellationPollInterval"/>, or at once when a cancel is signalled (this process's admin,
    /// or a PostgreSQL NOTIFY), and fires those runs' tokens. A worker that runs nothing reads nothing.
    /// </summary>
    private async Task WatchCancelsAsync(CancellationToken stoppingToken)
    {
        var interval = _options.CancellationPollInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            _cancelWakeup.Reset();
            var processId = ProcessId;
            if (!_active.IsEmpty && processId != 0)
            {
                try
                {
                    var requests = await _storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(processId), stoppingToken);
                    _registration.Outage.Succeeded();
                    foreach (var request in requests)
                    {
                        if (_active.TryGetValue(request.ClaimId, out var handle) && handle.RequestCancel(request.Reason, request.Resume, _clock.TimeProvider.GetTimestamp()))
                        {
                            Log.JobCancelDelivered(_logger, handle.Job.JobId, handle.Job.Kind, request.Reason);
                        }
                    }
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // The next poll tries again; the runs go on meanwhile.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    _registration.Outage.Failed(e, "read cancel requests", interval);
                }
            }

            await _cancelWakeup.WaitAsync(interval, stoppingToken);
        }
    }

    private JobOutcome Failure(long processId, ClaimedJob job, RunOutcome outcome)
    {
        var error = outcome.Error!;
        var retryAt = FailureDecision.RetryAt(outcome.Options ?? new JobOptions(), job.Attempt, job.MaxAttempts, error, _clock.UtcNow, Random.Shared.NextDouble());
        return new JobOutcome(processId, job, OutcomeKind.Failed) { Error = error, RetryAt = retryAt };
    }

    /// <summary>
    /// A run that was cancelled and did not return within the grace. In process mode the process is the only thing that
    /// can stop it: the worker exits (its supervisor recovers the claims, charging only a job that ignored its own timeout).
    /// In-process its slot is taken back and its claim settled; its code may run on.
    /// </summary>
    private async Task UnresponsiveAsync(ClaimedJob job, long processId, RunOutcome outcome)
    {
        var reason = outcome.Reason ?? "cancelled";
        Log.JobIgnoresCancellation(_logger, job.JobId, job.Kind, _options.CancellationGrace, Describe(reason));
        switch (reason)
        {
            case "pruned":
                Log.JobAbandoned(_logger, job.JobId, job.Kind, Describe(reason));
                _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Void));
                return;
            case "stop" when _exitNow is not null:
                // Exiting with it is the stop: the supervisor releases its claim uncharged (the row says "stopping").
                Interlocked.Increment(ref _stuckAtStop);
                _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Void));
                return;
            case "lease-lost" when _exitNow is not null:
                Log.LeaseExpiredExiting(_logger, Name, processId, Volatile.Read(ref _executing));
                _exitNow(WorkerExitCodes.LeaseLost);
                return;
            case "timeout" when _exitNow is not null:
                try
                {
                    using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await _storage.ClaimsMarkUnresponsiveAsync(new ClaimsMarkUnresponsiveParams(processId, [job.ClaimId], _clock.StorageNow), deadline.Token);
                }
#pragma warning disable CA1031 // Unmarked, the supervisor treats the exit as a death: blamed alone if it ran alone.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    _registration.Outage.Failed(e, "mark unresponsive", TimeSpan.Zero);
                }

                Log.WorkerReplacedForJob(_logger, Name, processId, job.JobId, job.Kind, Describe(reason), Math.Max(0, _slots.Held - 1));
                _exitNow(WorkerExitCodes.JobUnresponsive);
                return;
        }

        Log.JobAbandoned(_logger, job.JobId, job.Kind, Describe(reason));
        await RecordAbandonedAsync(job, processId, reason);
        if (reason == "timeout")
        {
            _completer!.Post(Failure(processId, job, outcome));
        }
        else
        {
            Release(processId, job, reason, $"did not stop when cancelled ({Describe(reason)}); abandoned, its code may still have been running");
        }
    }

    private async Task RecordAbandonedAsync(ClaimedJob job, long processId, string reason)
    {
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _storage.RunRecordAsync(
                new RunRecordParams(job.Ref, new RunEnding(RunOutcomes.Abandoned, "cancel-ignored", $"did not stop within {_options.CancellationGrace} of being cancelled ({Describe(reason)}); worker {Name} (process {processId}) took its slot back"), _registration.Runner.ToJson(), job.ClaimedAt, _clock.StorageNow),
                deadline.Token);
        }
#pragma warning disable CA1031 // History only.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private void Release(long processId, ClaimedJob job, string cause, string detail)
        => _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Released) { Ending = new RunEnding(RunOutcomes.Released, cause, detail) });

    /// <summary>Counts jobs claimed ahead that went back to their queue unstarted, whichever way they went.</summary>
    private static void CountReturnedAhead(int count, string reason)
    {
        if (count > 0)
        {
            KeelMetrics.ClaimedAheadReturned.Add(count, new KeyValuePair<string, object?>("keel.reason", reason));
        }
    }

    /// <summary>
    /// A claim that ends without a result goes back to its queue (released, uncharged, with <paramref name="cause"/>) —
    /// unless its process was pruned: then recovery has the job already, and the claim is only let go of (void).
    /// </summary>
    private void GiveBack(long processId, ClaimedJob job, string cause, string detail)
    {
        if (cause == "pruned")
        {
            _completer!.Post(new JobOutcome(processId, job, OutcomeKind.Void));
        }
        else
        {
            Release(processId, job, cause, detail);
        }
    }

    private static string Describe(string reason) => reason switch
    {
        "stop" => "its worker is stopping",
        "lease-lost" => "its worker could not renew its lease",
        "pruned" => "its worker was declared dead",
        "timeout" => "it exceeded its timeout",
        "cancelled" => "it was cancelled",
        "resume" => "it was cancelled to resume later",
        "suspect" => "it must run alone",
        "claim-ahead" => "it waited too long for a thread",
        _ => reason,
    };

    /// <summary>The run's last log lines, written while its claim is still held (before its outcome); bounded in time.</summary>
    private static async Task CloseLogAsync(JobLogBuffer logs)
    {
        if (logs.IsUnused)
        {
            return;
        }

        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await logs.CloseAsync(deadline.Token);
        }
#pragma warning disable CA1031 // Advisory: the outcome is written whatever became of the log.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>A result under the claim, retried through a short outage (the job waits); false once the claim is gone.</summary>
    private async Task<bool> SaveResultAsync(ClaimedJob job, long processId, string json, CancellationToken cancellationToken)
    {
        if (processId != ProcessId)
        {
            return false;
        }

        return await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "save result",
            ct => _storage.JobResultSaveAsync(new JobResultSaveParams(processId, job.Ref, json), ct),
            cancellationToken);
    }

    /// <summary>A checkpoint under the claim, retried through a short outage (the job waits); false once the claim is gone.</summary>
    private async Task<bool> SaveCheckpointAsync(ClaimedJob job, long processId, string json, CancellationToken cancellationToken)
    {
        if (processId != ProcessId)
        {
            return false; // Pruned: the claim was recovered with the old row.
        }

        return await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "save checkpoint",
            ct => _storage.JobCheckpointSaveAsync(new JobCheckpointSaveParams(processId, job.Ref, json), ct),
            cancellationToken);
    }

    private async Task<bool> ClaimHeldAsync(ClaimedJob job, long processId, CancellationToken cancellationToken)
    {
        if (!_registration.Lease.Healthy || processId != ProcessId)
        {
            return false;
        }

        return await _storage.ClaimHeldAsync(new ClaimHeldParams(processId, job.Ref, _clock.StorageNow), cancellationToken);
    }

    private static void RecordClaimed(ClaimedJob job)
    {
        if (KeelMetrics.Claimed.Enabled)
        {
            KeelMetrics.Claimed.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        }

        if (job.ReadyAt is { } readyAt && KeelMetrics.QueueLatency.Enabled)
        {
            var latency = Math.Max(0, (job.ClaimedAt - readyAt).TotalSeconds);
            KeelMetrics.QueueLatency.Record(latency, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        }
    }

    /// <summary>Cancels every run going on with <paramref name="reason"/>; later runs get a fresh cancellation.</summary>
    private void CancelRuns(string reason, bool renew)
    {
        RunCancellation cancelled;
        lock (_runsGate)
        {
            cancelled = _runs;
            if (renew)
            {
                _runs = new RunCancellation();
            }
        }

        cancelled.Cancel(reason);
    }

    /// <summary>
    /// A claim's outcome was written: a run no longer counts for the host's isolation, and a suspect's ends it —
    /// only now, so a death can never share a run whose completion was still in flight.
    /// </summary>
    private void OnSettled(long claimId)
    {
        // Only the end of an isolation wakes anyone here: an ordinary completion batch already wakes its worker once
        // for all its slots (a wake-up per settled claim would fragment the claims again).
        if (Isolation.Settled(claimId))
        {
            _signal.Notify(); // Every worker of the host may claim again.
            _wakeup.Set();
        }
    }

    private void OnFenced()
    {
        _slots.Close();
        Log.LeaseFenced(_logger, Name, ProcessId, _registration.Lease.SinceRenewal, _registration.Lease.Remaining, _slots.Held);
        CancelRuns("lease-lost", renew: true);
        GiveBackWaiting("lease-lost", $"claimed ahead but not started: {Describe("lease-lost")}");
        _wakeup.Set();
    }

    private void OnUnfenced()
    {
        if (!_stopping)
        {
            _slots.Open();
        }

        _wakeup.Set();
    }

    private void OnLeaseExpiring()
    {
        var executing = Volatile.Read(ref _executing);
        if (executing == 0)
        {
            return;
        }

        Log.LeaseExpiredExiting(_logger, Name, ProcessId, executing);
        _exitNow?.Invoke(WorkerExitCodes.LeaseLost);
    }

    /// <summary>
    /// The claims the database holds for this worker, compared with the ones it holds a slot for. A claim it holds no
    /// slot for (a claim whose commit succeeded but whose reply was lost; a fenced run's release that never landed) is
    /// released at once, uncharged — unless a claim call that may have made it is still waiting for its reply: then it
    /// is released at the next heartbeat if still unknown.
    /// </summary>
    private async Task ReconcileAsync(IReadOnlyList<long> databaseClaims, CancellationToken cancellationToken)
    {
        // Stopping: runs past the shutdown timeout give their slots back while their claims wait for the stop's own
        // release (recorded as a stop, uncharged), which also takes any claim whose reply was lost.
        if (_stopping)
        {
            return;
        }

        var processId = ProcessId;
        var (unknown, last, pendingUpToBound) = _slots.Unknown(databaseClaims, _orphanBound);
        var pendingAny = _slots.Unknown([], long.MaxValue).PendingUpTo;
        List<long> orphans;
        if (!pendingAny)
        {
            orphans = unknown;
            _orphanSuspects = [];
        }
        else
        {
            orphans = pendingUpToBound ? [] : [.. _orphanSuspects.Intersect(unknown)];
            _orphanSuspects = [.. unknown.Except(orphans)];
            _orphanBound = last;
        }

        if (orphans.Count == 0)
        {
            return;
        }

        Log.ClaimsReconciled(_logger, Name, processId, orphans.Count, string.Join(',', orphans.Select(id => id.ToString(CultureInfo.InvariantCulture))));
        await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "release unknown claims",
            ct => _storage.ClaimsReleaseAsync(
                new ClaimsReleaseParams(processId, orphans, _clock.StorageNow)
                {
                    Reason = new RunEnding(RunOutcomes.Released, "reconcile", $"the database held this claim for worker {Name} (process {processId}), which was not running it (a reply lost after its commit)"),
                    Runner = _registration.Runner.ToJson(),
                },
                ct),
            cancellationToken);
    }

    private string Metadata() => JsonSerializer.Serialize(new { queues = _worker.EffectiveQueues, threads = _worker.Threads, claimAhead = _claimAhead.Configured, pollingIntervalMs = _worker.PollingInterval.TotalMilliseconds });

    /// <summary>
    /// Our row was pruned: someone else has recovered (or will recover) our claims, so every running job's result would
    /// be rejected. Cancel them and wait for them (a run that ignores its cancellation is abandoned after the grace),
    /// then carry on under a new registration (in process mode: stop, and let the supervisor start a fresh process).
    /// </summary>
    private async Task RecoverFromPruneAsync(CancellationToken stoppingToken)
    {
        Log.ProcessPrunedWhileRunning(_logger, Name, ProcessId, _slots.Held);
        _slots.Close();
        DropOffer();
        CancelRuns("pruned", renew: true);
        GiveBackWaiting("pruned", string.Empty);
        try
        {
            await _slots.WhenEmptyAsync().WaitAsync(_options.CancellationGrace + TimeSpan.FromSeconds(2), stoppingToken);
        }
        catch (TimeoutException)
        {
            // Outcomes of the old row are void anyway: the completer is only retrying rejected writes.
        }

        if (_onPruned is not null)
        {
            _onPruned();
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }

        await _registration.RegisterAnewAsync(stoppingToken);
        if (!_stopping)
        {
            _slots.Open();
        }
    }

    /// <summary>
    /// The graceful stop (DESIGN §2.6): claim nothing more; wait for every claim held, however claimed (a claim made
    /// along with a completion that was in flight is held too, and a job it claimed is released without being started);
    /// after <see cref="KeelOptions.ShutdownTimeout"/> cancel the runs and give them the cancellation grace; write every
    /// outcome posted (a completion that arrives during the stop is written, never released); then release what is left,
    /// uncharged, and deregister — except, in process mode, the claims of runs that ignored their cancellation, which the
    /// supervisor releases once this process has exited and they cannot run on.
    /// </summary>
    private async Task StopAsync()
    {
        _stopping = true;
        _slots.Close();
        await WithdrawOfferAsync();
        GiveBackWaiting("stop", $"claimed ahead but not started: {Describe("stop")}");
        var held = _slots.Held;
        if (held > 0)
        {
            Log.WorkerStopping(_logger, Name, ProcessId, _options.ShutdownTimeout, held);
            await _registration.MarkStoppingAsync(StopMarkTimeout);
            if (!await WaitEmptyAsync(_options.ShutdownTimeout))
            {
                Log.ShutdownTimeoutExceeded(_logger, _options.ShutdownTimeout, _slots.Held);
                CancelRuns("stop", renew: false);
                await WaitEmptyAsync(_options.CancellationGrace + TimeSpan.FromSeconds(1));
            }
        }

        await _completer!.DrainAsync(DrainTimeout);
        var released = 0;
        if (Volatile.Read(ref _stuckAtStop) == 0)
        {
            try
            {
                released = await _registration.DeregisterAsync(DeregisterTimeout, new RunEnding(RunOutcomes.Released, "stop", $"worker {Name} stopped before this run could be written"));
            }
#pragma warning disable CA1031 // Shutdown goes on: the row is recovered (uncharged, it was stopping) by maintenance.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _registration.Outage.Failed(e, "deregister", TimeSpan.Zero);
            }
        }

        Log.WorkerStopped(_logger, Name, ProcessId, released);
        CancelRuns("stop", renew: false);
    }

    private async Task<bool> WaitEmptyAsync(TimeSpan timeout)
    {
        try
        {
            await _slots.WhenEmptyAsync().WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>A job claimed ahead, waiting for a thread since <paramref name="Since"/> (a timestamp).</summary>
    private sealed record WaitingJob(ClaimedJob Job, long ProcessId, long Since);

    /// <summary>
    /// One run's cancellation: its generation's (stop, lost lease, prune) or a cancel request of its own, which wins the
    /// reason (<c>cancelled</c>) whichever came first.
    /// </summary>
    private sealed class RunHandle(ClaimedJob job, RunCancellation runs) : IDisposable
    {
        private readonly CancellationTokenSource _source = CancellationTokenSource.CreateLinkedTokenSource(runs.Token);
        private readonly Lock _gate = new();
        private string? _cancelMessage;
        private long _cancelledAt;
        private bool _resumes;

        public ClaimedJob Job => job;

        public CancellationToken Token => _source.Token;

        /// <summary>Who asked to stop this run and why; null when nobody did.</summary>
        public string? CancelMessage
        {
            get
            {
                lock (_gate)
                {
                    return _cancelMessage;
                }
            }
        }

        public string? Reason => CancelMessage is not null ? (Resumes ? "resume" : "cancelled") : runs.Reason;

        /// <summary>The cancel puts the job back in its queue once the run stops (<see cref="CancelOptions.Resume"/>).</summary>
        public bool Resumes
        {
            get
            {
                lock (_gate)
                {
                    return _resumes;
                }
            }
        }

        /// <summary>When the cancel request fired the token (a <see cref="TimeProvider"/> timestamp); null before.</summary>
        public long? CancelledAt
        {
            get
            {
                lock (_gate)
                {
                    return _cancelMessage is null ? null : _cancelledAt;
                }
            }
        }

        /// <summary>Fires the token for a cancel request. False when one was delivered already.</summary>
        public bool RequestCancel(string message, bool resume, long timestamp)
        {
            lock (_gate)
            {
                if (_cancelMessage is not null)
                {
                    return false;
                }

                _cancelMessage = string.IsNullOrEmpty(message) ? "cancelled" : message;
                _cancelledAt = timestamp;
                _resumes = resume;
            }

            try
            {
                _source.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }

            return true;
        }

        public void Dispose() => _source.Dispose();
    }

    /// <summary>The cancellation of a generation of runs, with the reason it fired.</summary>
    private sealed class RunCancellation
    {
        private readonly CancellationTokenSource _source = new();
        private volatile string? _reason;

        public CancellationToken Token => _source.Token;

        public string? Reason => _reason;

        public bool IsCancellationRequested => _source.IsCancellationRequested;

        public void Cancel(string reason)
        {
            _reason ??= reason;
            try
            {
                _source.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}

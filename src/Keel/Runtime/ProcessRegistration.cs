using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>Who a process is in the registry: its kind, its name and its supervisor.</summary>
/// <param name="Kind">Worker, Dispatcher or Supervisor.</param>
/// <param name="Name">The unique row name; in process mode the supervisor chooses it so it can find the child's row.</param>
/// <param name="SupervisorId">The supervisor's row id, for children.</param>
internal sealed record ProcessIdentityInfo(string Kind, string Name, long? SupervisorId)
{
    public static ProcessIdentityInfo New(string kind, long? supervisorId = null) => new(kind, ProcessIdentity.NewName(kind), supervisorId);
}

/// <summary>
/// A process row and its lease. The heartbeat renews the lease in database time; every call on that path has a
/// deadline of its own, and a failed renewal is retried within a second. A watchdog on this process's monotonic clock
/// raises <see cref="Fenced"/> when less than a third of the lease is surely left (the owner cancels its jobs and claims
/// nothing), <see cref="Unfenced"/> when a renewal lands again, and <see cref="LeaseExpiring"/> when a tenth is left
/// while fenced. A heartbeat that finds the row gone raises <see cref="Lost"/>: the process was pruned.
/// </summary>
internal sealed class ProcessRegistration
{
    private readonly IKeelStorage _storage;
    private readonly KeelOptions _options;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly ProcessIdentityInfo _identity;
    private readonly Func<string> _metadata;
    private readonly HeartbeatTracker _tracker;
    private readonly Wakeup _beatNow = new();
    private int _generation;
    private long _lostId;
    private int _fenced;
    private int _expiring;
    private long _id;

    public ProcessRegistration(IKeelStorage storage, KeelOptions options, ILogger logger, KeelClock clock, ProcessIdentityInfo identity, Func<string> metadata)
    {
        _storage = storage;
        _options = options;
        _logger = logger;
        _clock = clock;
        _identity = identity;
        _metadata = metadata;
        _tracker = HeartbeatTracker.For(storage);
        Lease = new Lease(clock.TimeProvider, options.AliveThreshold);
        Outage = new OutageLog(logger, identity.Name, clock.TimeProvider);
    }

    public string Name => Generation == 0 ? _identity.Name : $"{_identity.Name}-{Generation}";

    public string Kind => _identity.Kind;

    /// <summary>How many times this process has registered anew after losing its row.</summary>
    public int Generation => Volatile.Read(ref _generation);

    /// <summary>The current row id; 0 before registration.</summary>
    public long Id => Interlocked.Read(ref _id);

    /// <summary>This process's lease, on its own clock.</summary>
    public Lease Lease { get; }

    /// <summary>Where this process's database trouble is logged, once per outage.</summary>
    public OutageLog Outage { get; }

    /// <summary>True while fenced: the lease may run out before a renewal lands.</summary>
    public bool IsFenced => Volatile.Read(ref _fenced) != 0;

    /// <summary>Who this process is, as a job's run history records it.</summary>
    public Runner Runner => new(Id, Name, ProcessIdentity.Pid, ProcessIdentity.Hostname);

    /// <summary>Raised (from the heartbeat loop) with the id of a row this process has lost.</summary>
    public event Action<long>? Lost;

    /// <summary>Raised when the lease may run out: stop every job, claim nothing.</summary>
    public event Action? Fenced;

    /// <summary>Raised when a renewal landed after a fence: the lease is healthy again.</summary>
    public event Action? Unfenced;

    /// <summary>Raised once per fence when a tenth of the lease is left (process mode: exit if a job still runs).</summary>
    public event Action? LeaseExpiring;

    /// <summary>
    /// Called after each heartbeat with the claims the database holds for this process (workers reconcile them with what
    /// they run); null asks for none.
    /// </summary>
    public Func<IReadOnlyList<long>, CancellationToken, Task>? Reconcile { get; set; }

    /// <summary>Asks the heartbeat loop to beat (and reconcile) now, e.g. after a claim whose outcome is unknown.</summary>
    public void BeatSoon() => _beatNow.Set();

    public async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var name = Name;
        long sentAt = 0;
        var id = await StorageRetry.RunAsync(
            _storage,
            Outage,
            "register process",
            ct =>
            {
                sentAt = _clock.TimeProvider.GetTimestamp();
                return _storage.ProcessRegisterAsync(
                    new ProcessRegisterParams(name, _identity.Kind, ProcessIdentity.Pid, ProcessIdentity.Hostname, ProcessIdentity.StartedAt, _identity.SupervisorId, _metadata(), _clock.StorageNow)
                    {
                        LeaseDuration = _options.AliveThreshold,
                        HostId = HostProcess.HostId,
                        PidStartTicks = HostProcess.SelfStartTicks,
                    },
                    ct);
            },
            cancellationToken);
        Lease.Renewed(sentAt);
        Interlocked.Exchange(ref _id, id);
        _tracker.Beat(this, name, id, _clock.TimeProvider.GetTimestamp());
        Log.ProcessRegistered(_logger, name, id, _identity.Kind, ProcessIdentity.Pid, ProcessIdentity.Hostname);
    }

    /// <summary>True when the heartbeat found <see cref="Id"/> pruned and nobody has acted on it yet.</summary>
    public bool TakeLost()
    {
        var lost = Interlocked.Exchange(ref _lostId, 0);
        return lost != 0 && lost == Id;
    }

    /// <summary>
    /// For roles that hold no claims: acts on a row the heartbeat found lost. Returns true when the role must stop
    /// (process mode: <paramref name="onPruned"/> stops the process so its supervisor starts a fresh one); otherwise
    /// registers anew and returns false.
    /// </summary>
    public async Task<bool> HandleLostAsync(Action? onPruned, CancellationToken cancellationToken)
    {
        if (!TakeLost())
        {
            return false;
        }

        if (onPruned is not null)
        {
            onPruned();
            return true;
        }

        await RegisterAnewAsync(cancellationToken);
        return false;
    }

    /// <summary>Hands back what the old row still holds (when only contact was lost) and registers under a new name.</summary>
    public async Task RegisterAnewAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _storage.ProcessDeregisterAsync(
                new ProcessDeregisterParams(Id, _clock.StorageNow)
                {
                    Reason = new RunEnding(RunOutcomes.Released, "registered-anew", "its process registered anew after losing its row"),
                    Runner = Runner.ToJson(),
                },
                cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && _storage.IsTransient(e))
        {
            // Still unreachable: maintenance recovers the old row's claims once its lease expires.
        }

        Interlocked.Increment(ref _generation);
        await RegisterAsync(cancellationToken);
    }

    /// <summary>Records that this process began a graceful stop (best effort, within <paramref name="timeout"/>).</summary>
    public async Task MarkStoppingAsync(TimeSpan timeout)
    {
        if (Id == 0)
        {
            return;
        }

        try
        {
            using var deadline = new CancellationTokenSource(timeout);
            await _storage.ProcessStoppingAsync(new ProcessStoppingParams(Id, _clock.StorageNow), deadline.Token).WaitAsync(timeout);
        }
#pragma warning disable CA1031 // Best effort: without it a leftover claim is recovered charged instead of uncharged.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Outage.Failed(e, "mark stopping", TimeSpan.Zero);
        }
    }

    /// <summary>
    /// Releases remaining claims (uncharged, recording <paramref name="reason"/>) and deletes the row, in one transaction.
    /// Returns how many claims went back to ready.
    /// </summary>
    public async Task<int> DeregisterAsync(TimeSpan timeout, RunEnding? reason = null)
    {
        if (Id == 0)
        {
            return 0;
        }

        _tracker.Remove(this);
        using var deadline = new CancellationTokenSource(timeout);
        var released = await StorageRetry.RunAsync(
            _storage,
            Outage,
            "deregister process",
            ct => _storage.ProcessDeregisterAsync(new ProcessDeregisterParams(Id, _clock.StorageNow) { Reason = reason, Runner = Runner.ToJson() }, ct),
            deadline.Token);
        Log.ProcessDeregistered(_logger, Name, Id, released);
        return released;
    }

    /// <summary>
    /// The life of a role that holds no claims (dispatcher, scheduler): register, heartbeat, run
    /// <paramref name="loop"/> until stopped, deregister. A failed deregistration is reported and left to maintenance.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> loop, Action<Exception> onDeregisterError, CancellationToken stoppingToken)
    {
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = Task.Run(() => HeartbeatAsync(heartbeatStop.Token), CancellationToken.None);
        try
        {
            await RegisterAsync(stoppingToken);
            await loop(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await heartbeatStop.CancelAsync();
            await heartbeat;
            try
            {
                await DeregisterAsync(TimeSpan.FromSeconds(5));
            }
#pragma warning disable CA1031 // Shutdown goes on; a leftover row is pruned by maintenance.
            catch (Exception e)
#pragma warning restore CA1031
            {
                onDeregisterError(e);
            }
        }
    }

    /// <summary>Renews the lease until <paramref name="cancellationToken"/> is cancelled, and watches it meanwhile.</summary>
    public async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        var watchdog = Task.Run(() => WatchAsync(cancellationToken), CancellationToken.None);
        try
        {
            await BeatLoopAsync(cancellationToken);
        }
        finally
        {
            await watchdog;
        }
    }

    private async Task BeatLoopAsync(CancellationToken cancellationToken)
    {
        var interval = _options.HeartbeatInterval;
        var retry = interval < TimeSpan.FromSeconds(1) ? interval : TimeSpan.FromSeconds(1);

        // Long enough for a loaded machine's slow round trip (a fresh process's first connection, a busy pool), short
        // enough that two attempts fit before the fence (a third of the lease is left at two thirds).
        var deadline = interval > _options.AliveThreshold / 4 ? interval : _options.AliveThreshold / 4;
        var failing = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            _beatNow.Reset();
            await _beatNow.WaitAsync(failing ? retry : interval, cancellationToken);
            if (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            var id = Id;
            if (id == 0)
            {
                continue;
            }

            var sentAt = _clock.TimeProvider.GetTimestamp();
            try
            {
                var result = await CallWithDeadlineAsync(
                    ct => _storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(id, _clock.StorageNow) { LeaseDuration = _options.AliveThreshold, ReturnClaims = Reconcile is not null }, ct),
                    deadline,
                    cancellationToken);
                failing = false;
                Outage.Succeeded();
                if (!result.Alive)
                {
                    Interlocked.Exchange(ref _lostId, id);
                    Lost?.Invoke(id);
                    continue;
                }

                Lease.Renewed(sentAt);
                _tracker.Beat(this, Name, id, _clock.TimeProvider.GetTimestamp());
                if (Lease.Healthy && Interlocked.CompareExchange(ref _fenced, 0, 1) == 1)
                {
                    Interlocked.Exchange(ref _expiring, 0);
                    Log.LeaseRenewed(_logger, Name, id, Lease.SinceRenewal);
                    Unfenced?.Invoke();
                }

                if (result.ClaimIds is { } claims && Reconcile is { } reconcile)
                {
                    await reconcile(claims, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The heartbeat never dies: the watchdog fences the process if renewals keep failing.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failing = true;
                Outage.Failed(e, "heartbeat", retry);
            }
        }
    }

    /// <summary>
    /// Runs one heartbeat-path call with a deadline of its own: the call is cancelled at the deadline, and the caller
    /// stops waiting for it then even if the store ignores the cancellation (a black-holed connection).
    /// </summary>
    private static async Task<T> CallWithDeadlineAsync<T>(Func<CancellationToken, Task<T>> call, TimeSpan deadline, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(deadline);
        var task = call(limit.Token);
        try
        {
            return await task.WaitAsync(deadline, cancellationToken);
        }
        catch (TimeoutException)
        {
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            throw new TimeoutException($"the heartbeat got no answer within {deadline}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the heartbeat got no answer within {deadline}");
        }
    }

    private async Task WatchAsync(CancellationToken cancellationToken)
    {
        var tick = TimeSpan.FromTicks(Math.Clamp(_options.AliveThreshold.Ticks / 30, TimeSpan.FromMilliseconds(20).Ticks, TimeSpan.FromMilliseconds(250).Ticks));
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(tick, _clock.TimeProvider, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (Id == 0 || !Lease.Started)
            {
                continue;
            }

            var remaining = Lease.Remaining;
            if (remaining <= Lease.FenceMargin && Interlocked.CompareExchange(ref _fenced, 1, 0) == 0)
            {
                Fenced?.Invoke();
            }

            if (IsFenced && remaining <= Lease.ExitMargin && Interlocked.CompareExchange(ref _expiring, 1, 0) == 0)
            {
                LeaseExpiring?.Invoke();
            }
        }
    }
}

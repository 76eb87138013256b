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
/// A process row and its heartbeat. A heartbeat that finds the row gone means the process was pruned; failing to
/// beat for longer than <see cref="KeelOptions.AliveThreshold"/> means it may have been. Either way
/// <see cref="Lost"/> is raised with the row id, and the owner decides: start over or exit.
/// </summary>
internal sealed class ProcessRegistration(IKeelStorage storage, KeelOptions options, ILogger logger, KeelClock clock, ProcessIdentityInfo identity, Func<string> metadata)
{
    private readonly HeartbeatTracker _tracker = HeartbeatTracker.For(storage);
    private int _generation;
    private long _lostId;

    public string Name => Generation == 0 ? identity.Name : $"{identity.Name}-{Generation}";

    public string Kind => identity.Kind;

    /// <summary>How many times this process has registered anew after losing its row.</summary>
    public int Generation => Volatile.Read(ref _generation);

    /// <summary>The current row id; 0 before registration.</summary>
    public long Id { get; private set; }

    /// <summary>Raised (from the heartbeat loop) with the id of a row this process has lost.</summary>
    public event Action<long>? Lost;

    public async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var name = Name;
        Id = await StorageRetry.RunAsync(
            storage,
            logger,
            "register process",
            ct => storage.ProcessRegisterAsync(new ProcessRegisterParams(name, identity.Kind, ProcessIdentity.Pid, ProcessIdentity.Hostname, ProcessIdentity.StartedAt, identity.SupervisorId, metadata(), clock.StorageNow), ct),
            cancellationToken);
        _tracker.Beat(this, name, Id, clock.TimeProvider.GetTimestamp());
        Log.ProcessRegistered(logger, name, Id, identity.Kind, ProcessIdentity.Pid, ProcessIdentity.Hostname);
    }

    /// <summary>
    /// For roles that hold no claims: acts on a row the heartbeat found lost. Returns true when the role must stop
    /// (process mode: <paramref name="onPruned"/> stops the process so its supervisor starts a fresh one); otherwise
    /// registers anew and returns false.
    /// </summary>
    public async Task<bool> HandleLostAsync(Action? onPruned, CancellationToken cancellationToken)
    {
        var lost = Interlocked.Exchange(ref _lostId, 0);
        if (lost == 0 || lost != Id)
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
            await storage.ProcessDeregisterAsync(new ProcessDeregisterParams(Id, clock.StorageNow), cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && storage.IsTransient(e))
        {
            // Still unreachable: maintenance recovers the old row's claims once its heartbeat expires.
        }

        Interlocked.Increment(ref _generation);
        await RegisterAsync(cancellationToken);
    }

    /// <summary>Releases remaining claims and deletes the row, in one transaction. Returns how many claims went back to ready.</summary>
    public async Task<int> DeregisterAsync(TimeSpan timeout)
    {
        if (Id == 0)
        {
            return 0;
        }

        _tracker.Remove(this);
        using var deadline = new CancellationTokenSource(timeout);
        var released = await StorageRetry.RunAsync(
            storage,
            logger,
            "deregister process",
            ct => storage.ProcessDeregisterAsync(new ProcessDeregisterParams(Id, clock.StorageNow), ct),
            deadline.Token);
        Log.ProcessDeregistered(logger, Name, Id, released);
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

    /// <summary>Beats until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        var lastBeat = clock.TimeProvider.GetTimestamp();
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(options.HeartbeatInterval, clock.TimeProvider, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var id = Id;
            if (id == 0)
            {
                continue;
            }

            try
            {
                if (await storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(id, clock.StorageNow), cancellationToken))
                {
                    lastBeat = clock.TimeProvider.GetTimestamp();
                    _tracker.Beat(this, Name, id, lastBeat);
                }
                else
                {
                    Interlocked.Exchange(ref _lostId, id);
                    Lost?.Invoke(id);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.HeartbeatFailed(logger, e, Name, id);
                var silent = clock.TimeProvider.GetElapsedTime(lastBeat);
                if (silent > options.AliveThreshold)
                {
                    Log.HeartbeatLost(logger, Name, id, silent);
                    Interlocked.Exchange(ref _lostId, id);
                    Lost?.Invoke(id);
                    lastBeat = clock.TimeProvider.GetTimestamp();
                }
            }
        }
    }
}

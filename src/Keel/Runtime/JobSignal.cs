using Keel.Storage;

namespace Keel.Runtime;

/// <summary>
/// Wakes this process's idle workers when this process enqueues ready jobs, so they need not wait for their
/// next poll, and its cancel watchers when a run may have been asked to stop. Other processes are woken by the store's
/// own notifications (LISTEN/NOTIFY) or by polling.
/// </summary>
internal sealed class JobSignal
{
    private readonly Lock _gate = new();
    private readonly List<Wakeup> _subscribers = [];
    private readonly List<Wakeup> _cancelSubscribers = [];
    private readonly List<Action<HandOff>> _handOffSubscribers = [];
    private volatile bool _listening;

    /// <summary>
    /// True while this process listens to the store's notifications (<see cref="JobNotifications.Listening"/> came, and
    /// the listen call has not ended): only then is a job handed to one of its workers announced at once.
    /// </summary>
    public bool Listening
    {
        get => _listening;
        set => _listening = value;
    }

    /// <summary>Subscribes a worker to the hand-offs announced to this process (each worker picks its own offers).</summary>
    public void SubscribeHandOffs(Action<HandOff> onHandOff)
    {
        lock (_gate)
        {
            _handOffSubscribers.Add(onHandOff);
        }
    }

    public void UnsubscribeHandOffs(Action<HandOff> onHandOff)
    {
        lock (_gate)
        {
            _handOffSubscribers.Remove(onHandOff);
        }
    }

    /// <summary>A job was handed to a worker that offered a slot: every subscribed worker sees it; the offerer takes it.</summary>
    public void HandOff(HandOff handOff)
    {
        Action<HandOff>[] subscribers;
        lock (_gate)
        {
            subscribers = [.. _handOffSubscribers];
        }

        foreach (var subscriber in subscribers)
        {
            subscriber(handOff);
        }
    }

    public void Subscribe(Wakeup wakeup)
    {
        lock (_gate)
        {
            _subscribers.Add(wakeup);
        }
    }

    public void Unsubscribe(Wakeup wakeup)
    {
        lock (_gate)
        {
            _subscribers.Remove(wakeup);
        }
    }

    /// <summary>Subscribes a worker's cancel watcher: woken when a run may have been asked to stop.</summary>
    public void SubscribeCancels(Wakeup wakeup)
    {
        lock (_gate)
        {
            _cancelSubscribers.Add(wakeup);
        }
    }

    public void UnsubscribeCancels(Wakeup wakeup)
    {
        lock (_gate)
        {
            _cancelSubscribers.Remove(wakeup);
        }
    }

    /// <summary>A cancel was requested (here, or elsewhere and notified): every cancel watcher reads its requests now.</summary>
    public void NotifyCancels()
    {
        lock (_gate)
        {
            foreach (var subscriber in _cancelSubscribers)
            {
                subscriber.Set();
            }
        }
    }

    public void Notify()
    {
        lock (_gate)
        {
            foreach (var subscriber in _subscribers)
            {
                subscriber.Set();
            }
        }
    }
}

/// <summary>
/// A resettable wake-up for one loop. Reset it before looking for work and wait on <see cref="Task"/> after:
/// a <see cref="Set"/> that lands in between is never lost.
/// </summary>
internal sealed class Wakeup
{
    private TaskCompletionSource _source = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Task => Volatile.Read(ref _source).Task;

    public void Set() => Volatile.Read(ref _source).TrySetResult();

    public void Reset()
    {
        var current = Volatile.Read(ref _source);
        if (current.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _source, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), current);
        }
    }

    /// <summary>Waits until set, the timeout passes, or the token is cancelled (without throwing).</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}

namespace Keel.Storage;

/// <summary>
/// A store that can tell this process when another process made jobs ready (PostgreSQL: LISTEN/NOTIFY), so idle
/// workers wake at once instead of waiting for their next poll. Polling stays the fallback.
/// </summary>
public interface IJobNotifications
{
    /// <summary>
    /// Listens until <paramref name="cancellationToken"/> is cancelled, calling <paramref name="onJobsReady"/> with
    /// the queue name of each notification. Throws when the connection fails; the caller reconnects.
    /// </summary>
    /// <param name="onJobsReady">Called for every notification, with its queue.</param>
    /// <param name="cancellationToken">Stops listening.</param>
    /// <returns>A task that ends when listening stops.</returns>
    Task ListenAsync(Action<string> onJobsReady, CancellationToken cancellationToken);
}

/// <summary>Notification payloads that are not queue names.</summary>
public static class JobNotifications
{
    /// <summary>
    /// A run was asked to stop (<see cref="IKeelStorage.ClaimCancelRequestAsync"/>): workers that hold claims read their
    /// cancel requests now instead of at their next poll. A queue of this very name still wakes idle workers: a listener
    /// signals both.
    /// </summary>
    public const string CancelRequested = "keel:cancel";

    /// <summary>
    /// Passed once by <see cref="IJobNotifications.ListenAsync"/> when it has started listening (not sent by the store's
    /// notifications): from then until the call ends, a job handed to a worker of this process is announced at once
    /// (<see cref="IJobHandOffs"/>), so its workers may offer slots.
    /// </summary>
    public const string Listening = "keel:listening";
}

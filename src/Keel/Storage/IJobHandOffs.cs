namespace Keel.Storage;

/// <summary>
/// A store that can hand a job straight to an idle worker as it is enqueued: the worker offers a free slot, and an
/// enqueue that finds the offer inserts its job already claimed by that worker, in the enqueue's own transaction, and
/// sends the claim with its notification. The job starts without a claim commit of its own: one durable commit between
/// enqueue and start instead of two. Implemented by stores that notify (<see cref="IJobNotifications"/>).
/// </summary>
/// <remarks>
/// The claim is an ordinary claim of the offering process (fenced, recovered and released like any other). Until the
/// worker has taken it, the store keeps it out of the claims a heartbeat returns for reconciling
/// (<see cref="ProcessHeartbeatParams.ReturnClaims"/>): the worker takes it from the notification or, if that was lost,
/// from <see cref="HandOffResolveAsync"/>, never both (the offer id tells them apart).
/// </remarks>
public interface IJobHandOffs
{
    /// <summary>
    /// Opens an offer of one slot of <see cref="HandOffOfferParams.ProcessId"/> for jobs of its queues, replacing any
    /// earlier offer of that process (taken or not: the caller resolved it first). Returns the offer's id, or null when
    /// the store cannot hand jobs off now (e.g. behind a transaction-mode pooler, where nothing listens).
    /// </summary>
    /// <param name="parameters">The process and the queues it serves.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The offer id, or null.</returns>
    Task<long?> HandOffOfferAsync(HandOffOfferParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Reads what became of an offer: still open, taken (with the claimed job), or gone (withdrawn, or its process
    /// pruned). With <see cref="HandOffResolveParams.Withdraw"/> the offer is removed in the same statement, so once the
    /// call returns no enqueue can take it.
    /// </summary>
    /// <param name="parameters">The process, the offer, and whether to withdraw it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>What became of the offer.</returns>
    Task<HandOffResolution> HandOffResolveAsync(HandOffResolveParams parameters, CancellationToken cancellationToken);

    /// <summary>Reads a notification payload: true, with the hand-off, when it announces one.</summary>
    /// <param name="payload">The payload passed to <see cref="IJobNotifications.ListenAsync"/>'s callback.</param>
    /// <param name="handOff">The hand-off it announces.</param>
    /// <returns>True for a hand-off notification.</returns>
    bool TryReadHandOff(string payload, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HandOff? handOff);
}

/// <summary>Parameters of <see cref="IJobHandOffs.HandOffOfferAsync"/>.</summary>
/// <param name="ProcessId">The offering worker's process row.</param>
/// <param name="Queues">The queues it serves; a job of any of them (unpaused, with nothing ready before it) may be handed to it.</param>
/// <param name="Now">The offer time; null means the database clock.</param>
public sealed record HandOffOfferParams(long ProcessId, IReadOnlyList<QueueFilter> Queues, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IJobHandOffs.HandOffResolveAsync"/>.</summary>
/// <param name="ProcessId">The offering worker's process row.</param>
/// <param name="OfferId">
/// The offer; 0, with <paramref name="Withdraw"/>, for every offer of the process (after an offer call whose reply was
/// lost: the claim such an offer recorded is then left to a heartbeat's reconcile, and no job is returned).
/// </param>
/// <param name="Withdraw">True to remove the offer (and, when it was taken, to learn the claim that took it).</param>
public sealed record HandOffResolveParams(long ProcessId, long OfferId, bool Withdraw);

/// <summary>What became of an offer.</summary>
/// <param name="Open">True when the offer still stands (never after a withdrawal).</param>
/// <param name="Job">The job handed over through it, when it was taken and its claim is still held; else null.</param>
public sealed record HandOffResolution(bool Open, ClaimedJob? Job);

/// <summary>A job handed to an idle worker through its offer, as its notification announced it.</summary>
/// <param name="OfferId">The offer the enqueue took.</param>
/// <param name="ProcessId">The process that offered (and now holds the claim).</param>
/// <param name="Job">The claimed job.</param>
public sealed record HandOff(long OfferId, long ProcessId, ClaimedJob Job);

using Keel.Storage;

namespace Keel.Runtime;

/// <summary>
/// A worker's one standing hand-off offer, and the rule that settles it exactly once: the notification of its hand-off
/// and the worker's own check of it may both report it taken, and only the first report takes it. A notification that
/// arrives while the offer call's reply is still on its way is kept for that reply.
/// </summary>
internal sealed class HandOffOffer
{
    private readonly Lock _gate = new();
    private Standing? _standing;
    private bool _opening;
    private HandOff? _early;

    /// <summary>The standing offer, if any.</summary>
    public Standing? Current
    {
        get
        {
            lock (_gate)
            {
                return _standing;
            }
        }
    }

    /// <summary>Before the offer call: a hand-off of this process notified until <see cref="Opened"/> is kept.</summary>
    public void Opening()
    {
        lock (_gate)
        {
            _opening = true;
            _early = null;
        }
    }

    /// <summary>
    /// The offer call returned: <paramref name="offerId"/> now stands (null: none was opened). When its hand-off was
    /// notified before the reply, returns the offer, taken already, with that hand-off: the caller settles it at once.
    /// </summary>
    public (Standing Offer, HandOff HandOff)? Opened(long? offerId, long processId, Slots.Reservation reservation, long now)
    {
        lock (_gate)
        {
            _opening = false;
            var early = _early;
            _early = null;
            if (offerId is not { } id)
            {
                return null;
            }

            var standing = new Standing(id, processId, reservation, now);
            if (early is null || early.OfferId != id)
            {
                _standing = standing;
                return null;
            }

            return (standing, early);
        }
    }

    /// <summary>A hand-off was notified to <paramref name="processId"/>: the standing offer it took, taken now; else null.</summary>
    public Standing? Notified(HandOff handOff, long processId)
    {
        lock (_gate)
        {
            if (_standing is { } standing && standing.Id == handOff.OfferId)
            {
                _standing = null;
                return standing;
            }

            if (_opening && handOff.ProcessId == processId)
            {
                _early = handOff; // Perhaps for the offer whose reply is on its way.
            }

            return null;
        }
    }

    /// <summary>Takes offer <paramref name="offerId"/> if it still stands (its check, withdrawal or the worker's prune); else null.</summary>
    public Standing? Take(long offerId)
    {
        lock (_gate)
        {
            if (_standing is not { } standing || standing.Id != offerId)
            {
                return null;
            }

            _standing = null;
            return standing;
        }
    }

    /// <summary>The check found <paramref name="offer"/> still open: the next check is one polling interval after <paramref name="now"/>. False when it no longer stands here.</summary>
    public bool StillOpen(Standing offer, long now)
    {
        lock (_gate)
        {
            if (_standing != offer)
            {
                return false;
            }

            _standing = offer with { CheckedAt = now };
            return true;
        }
    }

    /// <summary>A standing offer of process <paramref name="ProcessId"/>, holding one reserved slot; last read at <paramref name="CheckedAt"/> (a timestamp).</summary>
    internal sealed record Standing(long Id, long ProcessId, Slots.Reservation Reservation, long CheckedAt);
}

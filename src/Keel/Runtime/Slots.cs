using Keel.Storage;

namespace Keel.Runtime;

/// <summary>
/// The one owner of a worker's slot accounting. A slot is taken by a reservation before a claim call (so a worker
/// never holds more claims than its threads plus the claims it may make ahead, even while claims are in flight) and
/// held by its claim from the call's reply until the claim's outcome is written — finished, failed, released — or the
/// claim is known gone (pruned). The worker's claim loop and the completer's claim-along both reserve here; only the
/// completer settles.
/// </summary>
internal sealed class Slots(int threads)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, ClaimedJob> _held = [];
    private readonly SortedSet<long> _outstanding = [];
    private int _reserved;
    private bool _open;
    private long _seq;
    private int _ahead;
    private TaskCompletionSource? _empty;

    /// <summary>How many jobs may run at once.</summary>
    public int Threads => threads;

    /// <summary>
    /// How many claims may be held beyond <see cref="Threads"/>: jobs claimed ahead, waiting for a thread. Lowering it
    /// takes nothing back; it only stops new reservations until the claims held fall under the new bound.
    /// </summary>
    public int Ahead
    {
        get
        {
            lock (_gate)
            {
                return _ahead;
            }
        }

        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            lock (_gate)
            {
                _ahead = value;
            }
        }
    }

    /// <summary>How many claims are held (claimed, running, or waiting for their outcome to be written).</summary>
    public int Held
    {
        get
        {
            lock (_gate)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>How many slots a claim could take now.</summary>
    public int Free
    {
        get
        {
            lock (_gate)
            {
                return _open ? Math.Max(0, threads + _ahead - _held.Count - _reserved) : 0;
            }
        }
    }

    /// <summary>The sequence number of the latest reservation.</summary>
    public long LastReservation
    {
        get
        {
            lock (_gate)
            {
                return _seq;
            }
        }
    }

    /// <summary>Lets claims be reserved (after registering, after a fence lifts, after an isolation).</summary>
    public void Open()
    {
        lock (_gate)
        {
            _open = true;
        }
    }

    /// <summary>No more reservations (stopping, fenced, pruned); those already made complete.</summary>
    public void Close()
    {
        lock (_gate)
        {
            _open = false;
        }
    }

    /// <summary>True while reservations may be made.</summary>
    public bool IsOpen
    {
        get
        {
            lock (_gate)
            {
                return _open;
            }
        }
    }

    /// <summary>
    /// Reserves up to <paramref name="limit"/> slots for a claim call, counting <paramref name="freedAlong"/> held slots
    /// as free because the same transaction writes their completions before it claims. Null when none can be had.
    /// </summary>
    public Reservation? Reserve(int limit, int freedAlong = 0) => Reserve(limit, freedAlong, awaitsReply: true);

    /// <summary>
    /// Reserves one slot for a hand-off offer. Unlike a claim call's, it is not a reply a reconcile waits for: the store
    /// keeps the claim an offer records out of the claims a heartbeat returns, and the worker settles it through the offer.
    /// </summary>
    public Reservation? ReserveOffer() => Reserve(1, 0, awaitsReply: false);

    private Reservation? Reserve(int limit, int freedAlong, bool awaitsReply)
    {
        lock (_gate)
        {
            if (!_open)
            {
                return null;
            }

            var count = Math.Min(limit, threads + _ahead - _held.Count - _reserved + freedAlong);
            if (count <= 0)
            {
                return null;
            }

            _reserved += count;
            _seq++;
            if (awaitsReply)
            {
                _outstanding.Add(_seq);
            }

            return new Reservation(_seq, count);
        }
    }

    /// <summary>A claim call returned: its jobs now hold slots, and the rest of the reservation is given back.</summary>
    public void Fill(Reservation reservation, IReadOnlyList<ClaimedJob> jobs)
    {
        lock (_gate)
        {
            _reserved -= reservation.Count;
            _outstanding.Remove(reservation.Seq);
            foreach (var job in jobs)
            {
                _held[job.ClaimId] = job;
            }

            SignalIfEmpty();
        }
    }

    /// <summary>A claim call failed: the reservation is given back (whatever it may have committed is reconciled later).</summary>
    public void Void(Reservation reservation) => Fill(reservation, []);

    /// <summary>A claim's outcome was written (or its claim is known gone): its slot is free. False when it was not held.</summary>
    public bool Settle(long claimId)
    {
        bool removed;
        lock (_gate)
        {
            removed = _held.Remove(claimId);
            SignalIfEmpty();
        }

        if (removed)
        {
            Settled?.Invoke(claimId);
        }

        return removed;
    }

    /// <summary>Raised (outside the lock) when a held claim's outcome was written or it is known gone.</summary>
    public event Action<long>? Settled;

    /// <summary>True while <paramref name="claimId"/> holds a slot.</summary>
    public bool Holds(long claimId)
    {
        lock (_gate)
        {
            return _held.ContainsKey(claimId);
        }
    }

    /// <summary>Every held claim's job.</summary>
    public IReadOnlyList<ClaimedJob> HeldJobs()
    {
        lock (_gate)
        {
            return [.. _held.Values];
        }
    }

    /// <summary>
    /// Of <paramref name="databaseClaims"/>, those no slot holds; with the latest reservation's number and whether any
    /// reservation made up to <paramref name="bound"/> is still waiting for its reply (its claims may be among them).
    /// </summary>
    public (List<long> Unknown, long LastReservation, bool PendingUpTo) Unknown(IReadOnlyList<long> databaseClaims, long bound)
    {
        lock (_gate)
        {
            var unknown = databaseClaims.Where(id => !_held.ContainsKey(id)).ToList();
            var pending = _outstanding.Count > 0 && _outstanding.Min <= bound;
            return (unknown, _seq, pending);
        }
    }

    /// <summary>Completes once nothing is held or reserved.</summary>
    public Task WhenEmptyAsync()
    {
        lock (_gate)
        {
            if (_held.Count == 0 && _reserved == 0)
            {
                return Task.CompletedTask;
            }

            _empty ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _empty.Task;
        }
    }

    private void SignalIfEmpty()
    {
        if (_held.Count == 0 && _reserved == 0 && _empty is { } empty)
        {
            _empty = null;
            empty.TrySetResult();
        }
    }

    /// <summary>Slots promised to one claim call.</summary>
    /// <param name="Seq">Its number, increasing.</param>
    /// <param name="Count">How many slots: the most the call may claim.</param>
    internal sealed record Reservation(long Seq, int Count);
}

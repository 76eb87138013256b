using System.Reflection;
using Keel.Storage;

namespace Keel.Tests.Infrastructure;

/// <summary>
/// A store in front of a real one that injects the faults a network gives: heartbeats that get no answer (a black hole),
/// claim calls whose commit succeeds but whose reply is lost, and completion replies that come late (a slow network) or
/// are held until the test lets them go.
/// </summary>
public class StorageFaults : DispatchProxy
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _blackHoleEnds = NewHole();
    private int _lostClaimReplies;

    /// <summary>The real store.</summary>
    public IKeelStorage Inner { get; private set; } = null!;

    /// <summary>How many heartbeats were swallowed.</summary>
    public int SwallowedHeartbeats => Volatile.Read(ref _swallowed);

    private int _swallowed;

    private volatile bool _blackHoled;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    public static (IKeelStorage Storage, StorageFaults Faults) Wrap(IKeelStorage inner)
    {
        var proxy = Create<IKeelStorage, StorageFaults>();
        var faults = (StorageFaults)(object)proxy;
        faults.Inner = inner;
        return (proxy, faults);
    }

    /// <summary>While on, every heartbeat hangs, ignoring its cancellation token, until it is turned off (then it fails).</summary>
    public void BlackHoleHeartbeats(bool on)
    {
        lock (_gate)
        {
            _blackHoled = on;
            if (!on)
            {
                _blackHoleEnds.TrySetResult();
                _blackHoleEnds = NewHole();
            }
        }
    }

    /// <summary>The next <paramref name="count"/> claim calls commit, then throw a transient error instead of answering.</summary>
    public void LoseClaimReplies(int count) => Interlocked.Exchange(ref _lostClaimReplies, count);

    /// <summary>Every completion call (alone or with a claim) answers <paramref name="delay"/> after its commit.</summary>
    public void DelayCompletionReplies(TimeSpan delay) => Interlocked.Exchange(ref _completionDelayTicks, delay.Ticks);

    private long _completionDelayTicks;

    private TaskCompletionSource? _claimAlongHold;
    private int _heldClaimAlongReplies;

    /// <summary>
    /// While on, a completion call that claims jobs along commits, then keeps its reply until this is turned off: the
    /// worker's claim stays in flight, its jobs taken in the database, for as long as the test wants.
    /// </summary>
    public void HoldRepliesThatClaimAlong(bool on)
    {
        lock (_gate)
        {
            if (on)
            {
                _claimAlongHold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return;
            }

            _claimAlongHold?.TrySetResult();
            _claimAlongHold = null;
        }
    }

    private string? _claimGateQueue;
    private TaskCompletionSource? _claimGate;
    private TaskCompletionSource? _claimHeld;

    /// <summary>
    /// The next claim call of the worker's loop on <paramref name="queue"/> (not a suspect check, not a claim made with
    /// completions) waits, before it reaches the database, until <see cref="ReleaseHeldClaim"/>. The task returned
    /// completes once that call is waiting.
    /// </summary>
    public Task HoldNextClaimOf(string queue)
    {
        lock (_gate)
        {
            _claimGateQueue = queue;
            _claimGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _claimHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _claimHeld.Task;
        }
    }

    /// <summary>Lets the claim call held by <see cref="HoldNextClaimOf"/> go to the database.</summary>
    public void ReleaseHeldClaim()
    {
        lock (_gate)
        {
            _claimGate?.TrySetResult();
            _claimGate = null;
            _claimGateQueue = null;
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _claimCalls = new();

    /// <summary>How many claim calls on <paramref name="queue"/> (suspect checks included, claims along not) have answered.</summary>
    public int ClaimCallsOf(string queue) => _claimCalls.GetValueOrDefault(queue);

    /// <summary>How many replies <see cref="HoldRepliesThatClaimAlong"/> held (released or not).</summary>
    public int HeldClaimAlongReplies => Volatile.Read(ref _heldClaimAlongReplies);

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (targetMethod.Name == nameof(IKeelStorage.ProcessHeartbeatAsync) && _blackHoled)
        {
            Interlocked.Increment(ref _swallowed);
            Task hole;
            lock (_gate)
            {
                hole = _blackHoleEnds.Task;
            }

            return SwallowAsync(hole);
        }

        if (targetMethod.Name == nameof(IKeelStorage.JobsClaimAsync) && args![0] is JobsClaimParams { Suspects: false } claim && TakeClaimGate(claim.Queue.Value) is { } claimGate)
        {
            return HeldClaimAsync(claimGate, targetMethod, args);
        }

        object? result;
        try
        {
            result = targetMethod.Invoke(Inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }

        if (targetMethod.Name == nameof(IKeelStorage.JobsClaimAsync) && Volatile.Read(ref _lostClaimReplies) > 0)
        {
            return LoseReplyAsync((Task<IReadOnlyList<ClaimedJob>>)result!);
        }

        if (targetMethod.Name == nameof(IKeelStorage.JobsClaimAsync))
        {
            return CountedAsync((Task<IReadOnlyList<ClaimedJob>>)result!, ((JobsClaimParams)args![0]!).Queue.Value);
        }

        if (targetMethod.Name == nameof(IKeelStorage.JobsCompleteAndClaimAsync) && Volatile.Read(ref _claimAlongHold) is not null)
        {
            return HoldIfClaimedAsync((Task<CompleteAndClaimResult>)result!);
        }

        var delay = TimeSpan.FromTicks(Interlocked.Read(ref _completionDelayTicks));
        if (delay > TimeSpan.Zero)
        {
            if (targetMethod.Name == nameof(IKeelStorage.JobsCompleteAndClaimAsync))
            {
                return LateAsync((Task<CompleteAndClaimResult>)result!, delay);
            }

            if (targetMethod.Name == nameof(IKeelStorage.JobsCompleteAsync))
            {
                return LateAsync((Task<IReadOnlyList<long>>)result!, delay);
            }
        }

        return result;
    }

    private static async Task<ProcessHeartbeatResult> SwallowAsync(Task hole)
    {
        await hole;
        throw new TimeoutException("the heartbeat's packets were lost (test black hole)");
    }

    private async Task<IReadOnlyList<ClaimedJob>> LoseReplyAsync(Task<IReadOnlyList<ClaimedJob>> call)
    {
        var claimed = await call;
        if (claimed.Count == 0 || Interlocked.Decrement(ref _lostClaimReplies) < 0)
        {
            return claimed; // Nothing committed (nothing to lose), or enough replies were lost already.
        }

        throw new TimeoutException($"the reply to a claim of {claimed.Count} jobs was lost after its commit (test)");
    }

    private async Task<IReadOnlyList<ClaimedJob>> CountedAsync(Task<IReadOnlyList<ClaimedJob>> call, string queue)
    {
        try
        {
            return await call;
        }
        finally
        {
            _claimCalls.AddOrUpdate(queue, 1, (_, n) => n + 1);
        }
    }

    private Task? TakeClaimGate(string queue)
    {
        lock (_gate)
        {
            if (_claimGateQueue != queue || _claimGate is null || _claimHeld is null)
            {
                return null;
            }

            _claimGateQueue = null; // Only the next call.
            _claimHeld.TrySetResult();
            return _claimGate.Task;
        }
    }

    private async Task<IReadOnlyList<ClaimedJob>> HeldClaimAsync(Task gate, MethodInfo method, object?[] args)
    {
        await gate;
        try
        {
            return await CountedAsync((Task<IReadOnlyList<ClaimedJob>>)method.Invoke(Inner, args)!, ((JobsClaimParams)args[0]!).Queue.Value);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    private async Task<CompleteAndClaimResult> HoldIfClaimedAsync(Task<CompleteAndClaimResult> call)
    {
        var result = await call;
        Task? hold;
        lock (_gate)
        {
            hold = result.Claimed.Count > 0 ? _claimAlongHold?.Task : null;
        }

        if (hold is not null)
        {
            Interlocked.Increment(ref _heldClaimAlongReplies);
            await hold;
        }

        return result;
    }

    private static async Task<T> LateAsync<T>(Task<T> call, TimeSpan delay)
    {
        var result = await call;
        await Task.Delay(delay);
        return result;
    }

        private static TaskCompletionSource NewHole() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

using System.Reflection;
using Keel.Storage;

namespace Keel.Tests.Infrastructure;

/// <summary>
/// A store in front of a real one that injects the faults a network gives: heartbeats that get no answer (a black hole),
/// claim calls whose commit succeeds but whose reply is lost, and completion replies that come late (a slow network).
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

    private static async Task<T> LateAsync<T>(Task<T> call, TimeSpan delay)
    {
        var result = await call;
        await Task.Delay(delay);
        return result;
    }

        private static TaskCompletionSource NewHole() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

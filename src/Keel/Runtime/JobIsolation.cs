namespace Keel.Runtime;

/// <summary>
/// The runs of one host (in production, one OS process) across its workers, and the one rule that makes blame exact:
/// a suspect — a job that was running beside others when their process died — runs alone. A worker that claims one
/// begins an isolation: no worker of the host claims anything more, the suspect starts once every other run has ended,
/// and claiming resumes when it ends. A death while it runs then has one culprit.
/// </summary>
internal sealed class JobIsolation
{
    private readonly Lock _gate = new();

    // A run counts from its start until its outcome is written (its claim settled), not until its code returns: a
    // finished run whose completion is still in flight holds its claim, and a death meanwhile would share it.
    private readonly HashSet<long> _held = [];
    private bool _isolating;
    private long? _suspectClaim;
    private TaskCompletionSource? _idle;

    /// <summary>False while a suspect is waiting to run or running: claim nothing.</summary>
    public bool MayClaim
    {
        get
        {
            lock (_gate)
            {
                return !_isolating;
            }
        }
    }

    /// <summary>How many runs are going on or waiting for their outcome to be written.</summary>
    public int Running
    {
        get
        {
            lock (_gate)
            {
                return _held.Count;
            }
        }
    }

    /// <summary>Begins an isolation, unless one is already going on. True when the caller may claim a suspect.</summary>
    public bool TryBegin()
    {
        lock (_gate)
        {
            if (_isolating)
            {
                return false;
            }

            _isolating = true;
            return true;
        }
    }

    /// <summary>Ends the isolation (the suspect was released before it started, or none was claimed).</summary>
    public void End()
    {
        lock (_gate)
        {
            _isolating = false;
            _suspectClaim = null;
        }
    }

    /// <summary>Completes once no run is going on or waiting for its outcome to be written.</summary>
    public Task WhenIdleAsync()
    {
        lock (_gate)
        {
            if (_held.Count == 0)
            {
                return Task.CompletedTask;
            }

            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _idle.Task;
        }
    }

    /// <summary>A run starts; a suspect's run ends the isolation only once its outcome is written.</summary>
    public void RunStarted(long claimId, bool suspect)
    {
        lock (_gate)
        {
            _held.Add(claimId);
            if (suspect)
            {
                _suspectClaim = claimId;
            }
        }
    }

    /// <summary>
    /// A job claimed ahead starts, unless an isolation has begun: then it must not (false), or the suspect would not run
    /// alone. One step, so an isolation that found the host idle never sees a run start after it.
    /// </summary>
    public bool TryRunStarted(long claimId)
    {
        lock (_gate)
        {
            if (_isolating)
            {
                return false;
            }

            _held.Add(claimId);
            return true;
        }
    }

    /// <summary>A claim's outcome was written (or it is known gone). True when that ended the isolation.</summary>
    public bool Settled(long claimId)
    {
        TaskCompletionSource? idle = null;
        var ended = false;
        lock (_gate)
        {
            if (!_held.Remove(claimId))
            {
                return false;
            }

            if (_suspectClaim == claimId)
            {
                _suspectClaim = null;
                _isolating = false;
                ended = true;
            }

            if (_held.Count == 0 && _idle is not null)
            {
                idle = _idle;
                _idle = null;
            }
        }

        idle?.TrySetResult();
        return ended;
    }
}

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
    private int _running;
    private bool _isolating;
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

    /// <summary>How many runs are going on.</summary>
    public int Running
    {
        get
        {
            lock (_gate)
            {
                return _running;
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

    /// <summary>Ends the isolation (the suspect ended, or none was claimed).</summary>
    public void End()
    {
        lock (_gate)
        {
            _isolating = false;
        }
    }

    /// <summary>Completes once no run is going on.</summary>
    public Task WhenIdleAsync()
    {
        lock (_gate)
        {
            if (_running == 0)
            {
                return Task.CompletedTask;
            }

            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _idle.Task;
        }
    }

    public void RunStarted()
    {
        lock (_gate)
        {
            _running++;
        }
    }

    public void RunEnded()
    {
        TaskCompletionSource? idle = null;
        lock (_gate)
        {
            _running--;
            if (_running == 0 && _idle is not null)
            {
                idle = _idle;
                _idle = null;
            }
        }

        idle?.TrySetResult();
    }
}

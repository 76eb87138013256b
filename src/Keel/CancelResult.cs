namespace Keel;

/// <summary>What <see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/> did.</summary>
public enum CancelResult
{
    /// <summary>There is no such job (never was, or retention deleted it).</summary>
    NotFound,

    /// <summary>It had not started (ready, scheduled, blocked or awaiting its parents): it is discarded now, with the reason in its history.</summary>
    Cancelled,

    /// <summary>
    /// It is running: the request is stored with its claim and the run's cancellation token fires within a second; the job
    /// ends discarded (or finished, when it completed first). See docs/running-jobs.md.
    /// </summary>
    Requested,

    /// <summary>It is running and a cancel of this run was already requested: nothing more was stored.</summary>
    AlreadyRequested,

    /// <summary>It has already ended (finished, failed or discarded): there is nothing to stop.</summary>
    AlreadyEnded,

    /// <summary>A cancel with <see cref="CancelOptions.Resume"/> of a job that is not running (ready, scheduled, blocked or awaiting): it was left as it is.</summary>
    NotRunning,
}

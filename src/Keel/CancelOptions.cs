namespace Keel;

/// <summary>How <see cref="IKeelAdmin.CancelAsync(long, CancelOptions, CancellationToken)"/> cancels a job.</summary>
public sealed record CancelOptions
{
    /// <summary>Who cancels the job and why, for its history and <see cref="JobContext.CancellationMessage"/>; null records "cancelled by an operator".</summary>
    public string? Reason { get; init; }

    /// <summary>
    /// Stop the running job's run but keep the job: its token fires with <see cref="JobContext.CancellationReason"/>
    /// <c>resume</c> (save a checkpoint and return), and once the run stops the job goes back to its queue — its checkpoint
    /// kept, the attempt not counted — so its next run continues where this one stopped. A job that has not started is
    /// left as it is (<see cref="CancelResult.NotRunning"/>). Pause the queue first to keep it from starting again until
    /// you resume the queue. Default false: the job is discarded.
    /// </summary>
    public bool Resume { get; init; }
}

namespace Keel.Storage;

/// <summary>A job a worker has claimed, with everything needed to run and finalize it.</summary>
/// <param name="ClaimId">The claimed-execution row id: the identity of this lease.</param>
/// <param name="JobId">The job id.</param>
/// <param name="Kind">The stable kind name.</param>
/// <param name="Queue">The queue.</param>
/// <param name="Args">The arguments as JSON.</param>
/// <param name="Priority">The priority.</param>
/// <param name="Attempt">This run's attempt number (1 for the first).</param>
/// <param name="MaxAttempts">Attempts allowed.</param>
/// <param name="WorkerLosses">How many workers died running it before.</param>
/// <param name="CreatedAt">When it was enqueued.</param>
/// <param name="ClaimedAt">When this claim was taken.</param>
public sealed record ClaimedJob(
    long ClaimId,
    long JobId,
    string Kind,
    string Queue,
    string Args,
    int Priority,
    int Attempt,
    int MaxAttempts,
    int WorkerLosses,
    DateTimeOffset CreatedAt,
    DateTimeOffset ClaimedAt)
{
    /// <summary>The reference a finalizing call passes to prove it still holds the claim.</summary>
    public ClaimRef Ref => new(ClaimId, JobId, Attempt);

    /// <summary>
    /// When the job became ready (its ready-execution row was written: at enqueue, dispatch, promotion or release);
    /// null when the store does not say. <see cref="ClaimedAt"/> minus this is the queue latency.
    /// </summary>
    public DateTimeOffset? ReadyAt { get; init; }

    /// <summary>The W3C <c>traceparent</c> of the activity that enqueued the job, if there was one.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The batch the job belongs to, if any.</summary>
    public long? BatchId { get; init; }

    /// <summary>
    /// True for a suspect: it was running beside other jobs when its process died, so it must run alone in its
    /// process until one of its runs ends by itself; then a death while it runs can only be its own doing.
    /// </summary>
    public bool Suspect { get; init; }

    /// <summary>The state an earlier attempt saved (JSON; <see cref="JobContext.SaveCheckpointAsync{T}"/>), if any.</summary>
    public string? Checkpoint { get; init; }
}

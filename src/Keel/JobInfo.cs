namespace Keel;

/// <summary>Where a job is in its life. Derived from which execution row exists for it.</summary>
public enum JobState
{
    /// <summary>Waiting for a worker.</summary>
    Ready,

    /// <summary>Waiting for its time (a delayed job or a retry after backoff).</summary>
    Scheduled,

    /// <summary>Held back by a concurrency limit.</summary>
    Blocked,

    /// <summary>Claimed by a worker process and running ("in progress").</summary>
    Claimed,

    /// <summary>Failed for good: attempts spent, a discard-on exception, or a lost worker under policy.</summary>
    Failed,

    /// <summary>Ran to completion.</summary>
    Finished,

    /// <summary>Removed from the queue by a person (discard, cancel, clear) or a policy (a full concurrency limit set to discard).</summary>
    Discarded,
}

/// <summary>A job as stored, with its state and error history.</summary>
public sealed record JobInfo
{
    /// <summary>The job id.</summary>
    public required long Id { get; init; }

    /// <summary>The stable kind name.</summary>
    public required string Kind { get; init; }

    /// <summary>The queue.</summary>
    public required string Queue { get; init; }

    /// <summary>The arguments as stored (JSON).</summary>
    public required string Args { get; init; }

    /// <summary>The priority (smaller runs first).</summary>
    public required int Priority { get; init; }

    /// <summary>The current state.</summary>
    public required JobState State { get; init; }

    /// <summary>Attempts used so far (a run that ended, or whose worker was lost).</summary>
    public required int Attempts { get; init; }

    /// <summary>Attempts allowed.</summary>
    public required int MaxAttempts { get; init; }

    /// <summary>How many times a worker died while running this job.</summary>
    public required int WorkerLosses { get; init; }

    /// <summary>When it was enqueued.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it may run (for scheduled jobs and retries).</summary>
    public DateTimeOffset? ScheduledAt { get; init; }

    /// <summary>When it finished.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>When it was discarded.</summary>
    public DateTimeOffset? DiscardedAt { get; init; }

    /// <summary>Its concurrency key (<c>kind/key</c>), when its kind limits concurrency.</summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>Its uniqueness key (<c>kind/key</c>), when it was enqueued with one.</summary>
    public string? UniqueKey { get; init; }

    /// <summary>The process holding the claim, while <see cref="State"/> is <see cref="JobState.Claimed"/>.</summary>
    public long? ClaimedByProcessId { get; init; }

    /// <summary>When the current claim was taken.</summary>
    public DateTimeOffset? ClaimedAt { get; init; }

    /// <summary>Every recorded failure, oldest first.</summary>
    public IReadOnlyList<JobError> Errors { get; init; } = [];

    /// <summary>
    /// Its runs, oldest first: each that ended without finishing the job (failed, lost with its worker, released at a
    /// stop, rejected as a late result…) with who ran it and why it ended, then the one running or the one that
    /// finished it.
    /// </summary>
    public IReadOnlyList<Keel.Storage.JobRun> Runs { get; init; } = [];

    /// <summary>True while it must run alone in its process: it was running beside others when their process died.</summary>
    public bool Suspect { get; init; }
}

/// <summary>One failed attempt.</summary>
/// <param name="Attempt">The attempt number that failed.</param>
/// <param name="ExceptionType">The exception's full type name.</param>
/// <param name="Message">The exception message.</param>
/// <param name="StackTrace">The stack trace, if any.</param>
/// <param name="OccurredAt">When it was recorded.</param>
public sealed record JobError(int Attempt, string ExceptionType, string Message, string? StackTrace, DateTimeOffset OccurredAt);

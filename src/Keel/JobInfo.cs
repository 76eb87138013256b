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

    /// <summary>Waiting for its parent jobs to settle (a continuation or a dependency; see <see cref="EnqueueOptions.After"/>).</summary>
    Awaiting,
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

    /// <summary>The batch it belongs to, if any.</summary>
    public long? BatchId { get; init; }

    /// <summary>The jobs it waits (or waited) for, with how each settled.</summary>
    public IReadOnlyList<JobDependencyInfo> Parents { get; init; } = [];

    /// <summary>The jobs that wait (or waited) for it.</summary>
    public IReadOnlyList<JobDependencyInfo> Children { get; init; } = [];

    /// <summary>Every recorded failure, oldest first.</summary>
    public IReadOnlyList<JobError> Errors { get; init; } = [];

    /// <summary>
    /// Its runs, oldest first: each that ended without finishing the job (failed, lost with its worker, released at a
    /// stop, rejected as a late result…) with who ran it and why it ended, then the one running or the one that
    /// finished it.
    /// </summary>
    public IReadOnlyList<Keel.Storage.JobRun> Runs { get; init; } = [];

    /// <summary>
    /// The result a run of the job set (<see cref="JobContext.SetResultAsync{T}"/>), as JSON; read it with
    /// <see cref="GetResult{T}"/>. Null when none was set.
    /// </summary>
    public string? Result { get; init; }

    /// <summary>The lines its runs logged through <see cref="JobContext.Logger"/>, oldest first, each with its attempt (bounded per attempt).</summary>
    public IReadOnlyList<Keel.Storage.JobLogLine> Logs { get; init; } = [];

    /// <summary>The <see cref="Result"/> deserialized, or default when there is none.</summary>
    /// <typeparam name="T">The type the job set.</typeparam>
    /// <param name="options">The JSON options; null for the defaults of System.Text.Json's web settings.</param>
    /// <returns>The result.</returns>
    public T? GetResult<T>(System.Text.Json.JsonSerializerOptions? options = null)
        => Result is null ? default : System.Text.Json.JsonSerializer.Deserialize<T>(Result, options ?? new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));

    /// <summary>While it runs: how far it got, in [0, 1], as its run last reported (<see cref="JobContext.ReportProgressAsync"/>); null when it has not.</summary>
    public double? Progress { get; init; }

    /// <summary>While it runs: the message of its last progress report, if any.</summary>
    public string? ProgressMessage { get; init; }

    /// <summary>While it runs: the reason of a cancel asked for (<see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>) that its run has not ended on yet; null when none was.</summary>
    public string? CancelRequested { get; init; }

    /// <summary>
    /// True while it must run alone in its process: it was running beside others when their process died twice, or it
    /// was charged a loss. Cleared when a run of it ends by itself.
    /// </summary>
    public bool Suspect { get; init; }

    /// <summary>
    /// How many times its process died while it ran beside other jobs since a run of it last ended by itself; such
    /// deaths charge it nothing, and the second makes it a <see cref="Suspect"/>.
    /// </summary>
    public int SharedLosses { get; init; }

    /// <summary>
    /// What happened to the job, oldest first: enqueued, due (when it was enqueued for later), each failed attempt,
    /// claimed, finished or discarded. What the dashboard's job page and <c>keel jobs show</c> print.
    /// </summary>
    public IReadOnlyList<JobTimelineEntry> Timeline
    {
        get
        {
            var entries = new List<JobTimelineEntry> { new(CreatedAt, "enqueued", $"enqueued on queue {Queue}") };
            if (ScheduledAt is { } due && due > CreatedAt)
            {
                entries.Add(new(due, "due", State == JobState.Scheduled ? "due (waiting until then)" : "due"));
            }

            foreach (var error in Errors)
            {
                var cause = error.Cause is null ? string.Empty : $" ({error.Cause})";
                entries.Add(new(error.OccurredAt, "failed", $"attempt {error.Attempt} failed: {error.ExceptionType}{cause}"));
            }

            // Runs that ended without an error of their own: lost with a process, released, rejected, abandoned.
            foreach (var run in Runs.Where(r => r.EndedAt is not null && r.Outcome is not (Keel.Storage.RunOutcomes.Failed or Keel.Storage.JobRun.Finished)))
            {
                var charged = run.Outcome == Keel.Storage.RunOutcomes.Lost ? (run.Charged ? ", charged" : ", not charged") : string.Empty;
                var by = run.Runner is { } r ? $" on {r.Name} (pid {r.Pid} on {r.Host})" : string.Empty;
                entries.Add(new(run.EndedAt!.Value, run.Outcome, $"attempt {run.Attempt} {run.Outcome}{by}: {run.Cause}{charged}"));
            }

            if (ClaimedAt is { } claimed)
            {
                var by = Runs.LastOrDefault(r => r.Outcome == Keel.Storage.JobRun.Running)?.Runner is { } r ? $"{r.Name} (pid {r.Pid} on {r.Host})" : $"process {ClaimedByProcessId}";
                entries.Add(new(claimed, "claimed", $"claimed by {by} (attempt {Attempts + 1})"));
            }

            if (FinishedAt is { } finished)
            {
                entries.Add(new(finished, "finished", "finished"));
            }

            if (DiscardedAt is { } discarded)
            {
                entries.Add(new(discarded, "discarded", "discarded"));
            }

            return [.. entries.OrderBy(e => e.At)];
        }
    }
}

/// <summary>One failed attempt.</summary>
/// <param name="Attempt">The attempt number that failed.</param>
/// <param name="ExceptionType">The exception's full type name.</param>
/// <param name="Message">The exception message.</param>
/// <param name="StackTrace">The stack trace, if any.</param>
/// <param name="OccurredAt">When it was recorded.</param>
/// <param name="Cause">
/// Why Keel itself failed the attempt when its worker was lost, as a stable code (<c>process-exited</c>,
/// <c>heartbeat-expired</c>, <c>session-ended</c>, <c>process-missing</c>, <c>operator</c>); null when the job threw.
/// </param>
public sealed record JobError(int Attempt, string ExceptionType, string Message, string? StackTrace, DateTimeOffset OccurredAt, string? Cause = null);

/// <summary>One event of a job's <see cref="JobInfo.Timeline"/>.</summary>
/// <param name="At">When.</param>
/// <param name="Event">A stable code: <c>enqueued</c>, <c>due</c>, <c>failed</c>, <c>claimed</c>, <c>finished</c> or <c>discarded</c>.</param>
/// <param name="Description">A sentence for people, e.g. "attempt 2 failed: System.TimeoutException".</param>
public sealed record JobTimelineEntry(DateTimeOffset At, string Event, string Description);

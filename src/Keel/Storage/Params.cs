using System.Data.Common;

namespace Keel.Storage;

/// <summary>A job to insert, already serialized.</summary>
/// <param name="Kind">The stable kind name.</param>
/// <param name="Queue">The queue.</param>
/// <param name="Args">The arguments as JSON.</param>
/// <param name="Priority">Smaller runs first.</param>
/// <param name="MaxAttempts">Attempts allowed.</param>
/// <param name="ScheduledAt">Run no earlier than this; null or past means ready now.</param>
/// <param name="MaxWorkerLosses">Lost workers the job survives before recovery fails it; 0 fails it at the first loss.</param>
public sealed record NewJob(string Kind, string Queue, string Args, int Priority, int MaxAttempts, DateTimeOffset? ScheduledAt, int MaxWorkerLosses = 2)
{
    /// <summary>
    /// When set, at most <see cref="ConcurrencyLimit"/> jobs with this key are ready or claimed at once: the job takes
    /// a permit when it becomes ready, and waits as a blocked execution when none is free.
    /// </summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>Permits for <see cref="ConcurrencyKey"/>.</summary>
    public int ConcurrencyLimit { get; init; } = 1;

    /// <summary>How long a permit (and a blocked wait) lasts before maintenance re-checks it.</summary>
    public TimeSpan ConcurrencyDuration { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>On a full limit, discard the job instead of blocking it.</summary>
    public bool DiscardOnConflict { get; init; }

    /// <summary>
    /// When set, no second job with this key may be ready, scheduled, blocked or claimed: inserting one returns the
    /// existing job's id instead.
    /// </summary>
    public string? UniqueKey { get; init; }

    /// <summary>
    /// The W3C <c>traceparent</c> of the enqueuing activity, stored with the job so its perform span can link to it;
    /// null when nothing was being traced.
    /// </summary>
    public string? TraceParent { get; init; }

    /// <summary>
    /// The parents the job waits for; null (or empty) for a job that waits for none. A parent is an existing job or an
    /// earlier job of the same insert, never a later one or itself: an insert that names one is refused whole.
    /// </summary>
    public IReadOnlyList<NewDependency>? Dependencies { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.JobsInsertAsync"/>.</summary>
/// <param name="Jobs">The jobs, in order.</param>
/// <param name="Now">The time that decides ready versus scheduled; null means the database clock.</param>
/// <param name="Connection">The caller's open connection, when the insert must join the caller's work.</param>
/// <param name="Transaction">The caller's transaction on <paramref name="Connection"/>, if any.</param>
public sealed record JobsInsertParams(
    IReadOnlyList<NewJob> Jobs,
    DateTimeOffset? Now,
    DbConnection? Connection = null,
    DbTransaction? Transaction = null)
{
    /// <summary>
    /// The batch the jobs join, if any: its pending count grows by the jobs in the same transaction; refused with
    /// <see cref="KeelBatchClosedException"/> when the batch has completed or does not exist.
    /// </summary>
    public long? BatchId { get; init; }
}

/// <summary>Which ready rows a claim may take.</summary>
/// <param name="Kind">Every queue, one queue, or every queue whose name starts with <paramref name="Value"/>.</param>
/// <param name="Value">The queue name or prefix; empty for <see cref="QueueMatch.All"/>.</param>
public sealed record QueueFilter(QueueMatch Kind, string Value)
{
    /// <summary>Every queue.</summary>
    public static QueueFilter All { get; } = new(QueueMatch.All, string.Empty);

    /// <summary>Parses one worker queue entry: <c>*</c>, <c>name</c> or <c>prefix*</c>.</summary>
    /// <param name="entry">The entry.</param>
    /// <returns>The filter.</returns>
    /// <exception cref="ArgumentException">The entry is empty or has a <c>*</c> anywhere but at the end.</exception>
    public static QueueFilter Parse(string entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Length == 0)
        {
            throw new ArgumentException("a queue entry is empty", nameof(entry));
        }

        var star = entry.IndexOf('*', StringComparison.Ordinal);
        if (star < 0)
        {
            return new QueueFilter(QueueMatch.Exact, entry);
        }

        if (star != entry.Length - 1)
        {
            throw new ArgumentException($"queue entry '{entry}' has '*' before its end; '*' is allowed only alone or as a suffix", nameof(entry));
        }

        return entry.Length == 1 ? All : new QueueFilter(QueueMatch.Prefix, entry[..^1]);
    }
}

/// <summary>How a <see cref="QueueFilter"/> matches queue names.</summary>
public enum QueueMatch
{
    /// <summary>Every queue that is not paused.</summary>
    All,

    /// <summary>Exactly one queue name, compared literally.</summary>
    Exact,

    /// <summary>Queue names starting with a literal prefix.</summary>
    Prefix,
}

/// <summary>Parameters of <see cref="IKeelStorage.JobsClaimAsync"/>.</summary>
/// <param name="ProcessId">The claiming process's row id.</param>
/// <param name="Queue">Which ready rows qualify.</param>
/// <param name="Limit">The most to claim (the worker's free slots).</param>
/// <param name="Now">The claim time; null means the database clock.</param>
public sealed record JobsClaimParams(long ProcessId, QueueFilter Queue, int Limit, DateTimeOffset? Now)
{
    /// <summary>
    /// False (the default): claim only jobs that may run beside others. True: claim only suspects — jobs that were
    /// running beside others when their process died — which the caller must run alone in its process
    /// (<see cref="ClaimedJob.Suspect"/>).
    /// </summary>
    public bool Suspects { get; init; }
}

/// <summary>The claim a finalizing call must still hold.</summary>
/// <param name="ClaimId">The claimed-execution row id.</param>
/// <param name="JobId">The job id.</param>
/// <param name="Attempt">The attempt number the claim represents.</param>
public readonly record struct ClaimRef(long ClaimId, long JobId, int Attempt);

/// <summary>Parameters of <see cref="IKeelStorage.JobsCompleteAsync"/>.</summary>
/// <param name="ProcessId">The process that holds the claims.</param>
/// <param name="Claims">The claims whose jobs finished.</param>
/// <param name="Now">The finish time; null means the database clock.</param>
/// <param name="PreserveFinishedJobs">Keep finished jobs (with <c>finished_at</c>) rather than delete them.</param>
public sealed record JobsCompleteParams(long ProcessId, IReadOnlyList<ClaimRef> Claims, DateTimeOffset? Now, bool PreserveFinishedJobs)
{
    /// <summary>Who ran the jobs (<see cref="Runner.ToJson"/>), kept with each finished job; null records nothing.</summary>
    public string? Runner { get; init; }
}

/// <summary>The result of <see cref="IKeelStorage.JobsCompleteAndClaimAsync"/>.</summary>
/// <param name="Completed">The claim ids that were still held (and are now finished).</param>
/// <param name="Claimed">The jobs claimed after them.</param>
public sealed record CompleteAndClaimResult(IReadOnlyList<long> Completed, IReadOnlyList<ClaimedJob> Claimed);

/// <summary>A failure as stored.</summary>
/// <param name="ExceptionType">The exception's full type name.</param>
/// <param name="Message">The message.</param>
/// <param name="StackTrace">The stack trace, if any.</param>
public sealed record FailureRecord(string ExceptionType, string Message, string? StackTrace)
{
    /// <summary>Describes an exception for storage.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns>The record.</returns>
    public static FailureRecord From(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new FailureRecord(exception.GetType().FullName ?? exception.GetType().Name, exception.Message, exception.ToString());
    }
}

/// <summary>Parameters of <see cref="IKeelStorage.JobFailAsync"/>.</summary>
/// <param name="ProcessId">The process that holds the claim.</param>
/// <param name="Claim">The claim.</param>
/// <param name="Failure">What went wrong.</param>
/// <param name="RetryAt">When to run again; null fails the job for good.</param>
/// <param name="Now">The failure time; null means the database clock.</param>
public sealed record JobFailParams(long ProcessId, ClaimRef Claim, FailureRecord Failure, DateTimeOffset? RetryAt, DateTimeOffset? Now)
{
    /// <summary>Who ran the attempt (<see cref="Runner.ToJson"/>), recorded in the job's run history.</summary>
    public string? Runner { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.ClaimsReleaseAsync"/>.</summary>
/// <param name="ProcessId">The process that holds the claims.</param>
/// <param name="ClaimIds">Which claims; null means all of the process's claims.</param>
/// <param name="Now">The release time; null means the database clock.</param>
public sealed record ClaimsReleaseParams(long ProcessId, IReadOnlyList<long>? ClaimIds, DateTimeOffset? Now)
{
    /// <summary>Why the runs end, recorded in each job's run history; null records nothing.</summary>
    public RunEnding? Reason { get; init; }

    /// <summary>Who ran the jobs (<see cref="Runner.ToJson"/>), recorded with <see cref="Reason"/>.</summary>
    public string? Runner { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.ScheduledDispatchAsync"/>.</summary>
/// <param name="BatchSize">The most jobs to move.</param>
/// <param name="Now">Jobs due at or before this time move; null means the database clock.</param>
public sealed record ScheduledDispatchParams(int BatchSize, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ProcessRegisterAsync"/>.</summary>
/// <param name="Name">A unique name, e.g. <c>worker-3f2a…</c>.</param>
/// <param name="Kind">Worker, Dispatcher, Scheduler or Supervisor.</param>
/// <param name="Pid">The OS process id.</param>
/// <param name="Hostname">The host.</param>
/// <param name="ProcessStartedAt">When the OS process started; with the pid it tells a live process from a reused pid.</param>
/// <param name="SupervisorId">The supervising process's row id, if any.</param>
/// <param name="Metadata">JSON describing the process (queues, threads…).</param>
/// <param name="Now">The registration time; null means the database clock.</param>
public sealed record ProcessRegisterParams(
    string Name,
    string Kind,
    int Pid,
    string Hostname,
    DateTimeOffset ProcessStartedAt,
    long? SupervisorId,
    string Metadata,
    DateTimeOffset? Now)
{
    /// <summary>How long the lease lasts from the registration (and from every heartbeat): the process's alive threshold.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The host's boot id and pid namespace: another process with the same value may judge
    /// this one by its pid. Null: never judge it by its pid.
    /// </summary>
    public string? HostId { get; init; }

    /// <summary>The OS process's start time in clock ticks since boot; with the pid it names one process for good.</summary>
    public long? PidStartTicks { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.ProcessHeartbeatAsync"/>.</summary>
/// <param name="ProcessId">The process row id.</param>
/// <param name="Now">The heartbeat time; null means the database clock.</param>
public sealed record ProcessHeartbeatParams(long ProcessId, DateTimeOffset? Now)
{
    /// <summary>How long the renewed lease lasts from now.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Return the ids of the claims the process holds, so a worker can reconcile them with what it runs.</summary>
    public bool ReturnClaims { get; init; }
}

/// <summary>What a heartbeat found.</summary>
/// <param name="Alive">False when the process's row is gone: it was pruned.</param>
/// <param name="ClaimIds">The claims it holds, when asked for (<see cref="ProcessHeartbeatParams.ReturnClaims"/>).</param>
public sealed record ProcessHeartbeatResult(bool Alive, IReadOnlyList<long>? ClaimIds)
{
    /// <summary>The row is gone.</summary>
    public static ProcessHeartbeatResult Gone { get; } = new(false, null);
}

/// <summary>Parameters of <see cref="IKeelStorage.ProcessStoppingAsync"/>.</summary>
/// <param name="ProcessId">The process row id.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ProcessStoppingParams(long ProcessId, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ClaimsMarkUnresponsiveAsync"/>.</summary>
/// <param name="ProcessId">The process that holds the claims.</param>
/// <param name="ClaimIds">The claims whose jobs did not stop when cancelled.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ClaimsMarkUnresponsiveParams(long ProcessId, IReadOnlyList<long> ClaimIds, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ClaimHeldAsync"/>.</summary>
/// <param name="ProcessId">The process that should hold the claim.</param>
/// <param name="Claim">The claim.</param>
/// <param name="Now">The time the lease must outlast; null means the database clock.</param>
public sealed record ClaimHeldParams(long ProcessId, ClaimRef Claim, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.RunRecordAsync"/>.</summary>
/// <param name="Claim">The claim the run held; claim id 0 for a job that never ran (cancelled before it started).</param>
/// <param name="Ending">How it ended.</param>
/// <param name="Runner">Who ran it (<see cref="Runner.ToJson"/>).</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record RunRecordParams(ClaimRef Claim, RunEnding Ending, string? Runner, DateTimeOffset? StartedAt, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ProcessDeregisterAsync"/>.</summary>
/// <param name="ProcessId">The process row id.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ProcessDeregisterParams(long ProcessId, DateTimeOffset? Now)
{
    /// <summary>Why the claims it still holds go back to ready, recorded in each job's run history.</summary>
    public RunEnding? Reason { get; init; }

    /// <summary>Who ran them (<see cref="Runner.ToJson"/>).</summary>
    public string? Runner { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.ClaimCancelRequestAsync"/>.</summary>
/// <param name="JobId">The job whose run to stop.</param>
/// <param name="Reason">Who asked and why, for the run's <see cref="JobContext.CancellationMessage"/> and its history.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ClaimCancelRequestParams(long JobId, string Reason, DateTimeOffset? Now)
{
    /// <summary>
    /// The job goes back to its queue with its checkpoint when the run stops, instead of being discarded
    /// (<see cref="CancelOptions.Resume"/>); stored apart from a discarding cancel, so recovery sends it back like any claim.
    /// </summary>
    public bool Resume { get; init; }
}

/// <summary>What <see cref="IKeelStorage.ClaimCancelRequestAsync"/> found.</summary>
/// <param name="ClaimId">The job's claim.</param>
/// <param name="ProcessId">The process that holds it.</param>
/// <param name="AlreadyRequested">A cancel of this claim had been requested before: nothing was changed.</param>
public sealed record ClaimCancelRequest(long ClaimId, long ProcessId, bool AlreadyRequested);

/// <summary>Parameters of <see cref="IKeelStorage.ClaimsCancelRequestedAsync"/>.</summary>
/// <param name="ProcessId">The process whose claims to read.</param>
public sealed record ClaimsCancelRequestedParams(long ProcessId);

/// <summary>A claim whose run was asked to stop.</summary>
/// <param name="ClaimId">The claim.</param>
/// <param name="JobId">Its job.</param>
/// <param name="Reason">Who asked and why.</param>
public sealed record ClaimCancelRequested(long ClaimId, long JobId, string Reason)
{
    /// <summary>The job goes back to its queue when the run stops (<see cref="CancelOptions.Resume"/>) instead of being discarded.</summary>
    public bool Resume { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.JobCancelFinishAsync"/>.</summary>
/// <param name="ProcessId">The process that holds the claim.</param>
/// <param name="Claim">The claim.</param>
/// <param name="Ending">What goes into the run history (outcome <see cref="RunOutcomes.Cancelled"/>).</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record JobCancelFinishParams(long ProcessId, ClaimRef Claim, RunEnding Ending, DateTimeOffset? Now)
{
    /// <summary>Who ran it (<see cref="Runner.ToJson"/>), for its history.</summary>
    public string? Runner { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.JobCheckpointSaveAsync"/>.</summary>
/// <param name="ProcessId">The process that must hold the claim.</param>
/// <param name="Claim">The claim.</param>
/// <param name="Checkpoint">The state, as JSON.</param>
public sealed record JobCheckpointSaveParams(long ProcessId, ClaimRef Claim, string Checkpoint);

/// <summary>Parameters of <see cref="IKeelStorage.JobProgressReportAsync"/>.</summary>
/// <param name="ProcessId">The process that must hold the claim.</param>
/// <param name="Claim">The claim.</param>
/// <param name="Fraction">How far the run got, in [0, 1].</param>
/// <param name="Message">What it is doing, if it says.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record JobProgressParams(long ProcessId, ClaimRef Claim, double Fraction, string? Message, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.JobLogsAppendAsync"/>.</summary>
/// <param name="ProcessId">The process that must hold the claim.</param>
/// <param name="Claim">The claim (its attempt is stored with each line).</param>
/// <param name="Lines">The lines, oldest first.</param>
public sealed record JobLogsAppendParams(long ProcessId, ClaimRef Claim, IReadOnlyList<JobLogLine> Lines);

/// <summary>Parameters of <see cref="IKeelStorage.JobResultSaveAsync"/>.</summary>
/// <param name="ProcessId">The process that must hold the claim.</param>
/// <param name="Claim">The claim.</param>
/// <param name="Result">The result, as JSON.</param>
public sealed record JobResultSaveParams(long ProcessId, ClaimRef Claim, string Result);

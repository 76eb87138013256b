namespace Keel.Storage;

/// <summary>Why a claim's worker is considered lost; recorded with the job so an operator sees what happened.</summary>
/// <param name="Code">
/// A stable code: <c>process-exited</c>, <c>process-missing</c>, <c>session-ended</c>, <c>lease-expired</c>,
/// <c>stopped</c>, <c>lease-lost</c>, <c>cancel-ignored</c> or <c>operator</c>.
/// </param>
/// <param name="Description">A sentence for people, e.g. "heartbeat expired: last heartbeat 2030-01-01T12:00:00Z, 35 s before pruning".</param>
public sealed record WorkerLostCause(string Code, string Description)
{
    /// <summary>The exception type name stored for a lost worker.</summary>
    public const string ExceptionType = "Keel.WorkerLostException";

    /// <summary>The message stored with the failure.</summary>
    public string Message => "worker lost: " + Description;
}

/// <summary>A registered process as stored.</summary>
/// <param name="Id">The row id.</param>
/// <param name="Name">The unique name.</param>
/// <param name="Kind">Worker, Dispatcher, Scheduler or Supervisor.</param>
/// <param name="Pid">The OS process id.</param>
/// <param name="Hostname">The host.</param>
/// <param name="StartedAt">When the OS process started.</param>
/// <param name="SupervisorId">Its supervisor's row id, if any.</param>
/// <param name="LastHeartbeatAt">Its last heartbeat.</param>
/// <param name="HeartbeatAge">How long ago that was, by the database clock.</param>
/// <param name="Metadata">JSON: queues, threads…</param>
/// <param name="Claims">How many jobs it holds.</param>
public sealed record ProcessInfo(
    long Id,
    string Name,
    string Kind,
    int Pid,
    string Hostname,
    DateTimeOffset StartedAt,
    long? SupervisorId,
    DateTimeOffset LastHeartbeatAt,
    TimeSpan HeartbeatAge,
    string Metadata,
    int Claims)
{
    /// <summary>When its lease runs out, in database time, unless a heartbeat renews it.</summary>
    public DateTimeOffset LeaseExpiresAt { get; init; }

    /// <summary>How long its lease still runs, by the database clock; negative once it expired.</summary>
    public TimeSpan LeaseRemaining { get; init; }

    /// <summary>True once its lease expired: anyone may recover its claims (after the prune pass's own checks).</summary>
    public bool LeaseExpired => LeaseRemaining < TimeSpan.Zero;

    /// <summary>Its host's boot id and pid namespace; null when its pid may not be checked.</summary>
    public string? HostId { get; init; }

    /// <summary>Its OS process's start time in clock ticks since boot, when known.</summary>
    public long? PidStartTicks { get; init; }

    /// <summary><c>session</c> when a database session lock speaks for it (PostgreSQL), else <c>lease</c>.</summary>
    public string Liveness { get; init; } = "lease";

    /// <summary>When it began a graceful stop, if it did.</summary>
    public DateTimeOffset? StoppingAt { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.ProcessesListAsync"/>.</summary>
/// <param name="StaleAfter">When set, only processes whose heartbeat is older than this.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ProcessesListParams(TimeSpan? StaleAfter, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ProcessRecoverAsync"/>.</summary>
/// <param name="ProcessIds">
/// The rows to prune, together: every row of one OS process (an in-process host registers one per role), so that
/// the jobs they held count as running beside each other.
/// </param>
/// <param name="Condition">What must still hold for each row once it is locked.</param>
/// <param name="Cause">Why, recorded on each recovered job.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ProcessRecoverParams(IReadOnlyList<long> ProcessIds, RecoverCondition Condition, WorkerLostCause Cause, DateTimeOffset? Now)
{
    /// <summary>One row, known dead.</summary>
    /// <param name="processId">The row.</param>
    /// <param name="cause">Why.</param>
    /// <param name="now">The time; null means the database clock.</param>
    /// <returns>The parameters.</returns>
    public static ProcessRecoverParams Dead(long processId, WorkerLostCause cause, DateTimeOffset? now) => new([processId], RecoverCondition.None, cause, now);

    /// <summary>Whether the recovered jobs are charged (see <see cref="RecoveryCharge"/>).</summary>
    public RecoveryCharge Charge { get; init; } = RecoveryCharge.Blame;
}

/// <summary>What a prune re-checks under the row lock.</summary>
public enum RecoverCondition
{
    /// <summary>Nothing: the process is known dead (its exit was seen, its pid is gone, its session ended for good).</summary>
    None,

    /// <summary>Its lease is still expired (a heartbeat that landed meanwhile saves it).</summary>
    LeaseExpired,
}

/// <summary>How recovered jobs are charged (DESIGN §2.5: a loss is charged only when the process itself died).</summary>
public enum RecoveryCharge
{
    /// <summary>
    /// The process died. A job whose claim was marked unresponsive is charged alone; otherwise a job that was the only
    /// one its process held is charged (an attempt and a worker loss, failing it once its losses are spent), and
    /// jobs that shared the process are charged nothing and count a shared loss (at the second they become suspects that
    /// run alone). A process that
    /// had begun a graceful stop charges nothing.
    /// </summary>
    Blame,

    /// <summary>Nobody is charged: back to ready as they were (a graceful stop, a lost lease, a database outage).</summary>
    None,
}

/// <summary>What recovering claims did.</summary>
/// <param name="Retried">Jobs put back to ready, the lost run counted as an attempt and a worker loss.</param>
/// <param name="Failed">Jobs failed with a <c>WorkerLostException</c> (policy, losses or attempts spent).</param>
/// <param name="Released">Jobs put back to ready without counting anything (uncharged, suspects, operator release).</param>
public sealed record RecoveryResult(int Retried, int Failed, int Released = 0)
{
    /// <summary>Nothing recovered.</summary>
    public static RecoveryResult None { get; } = new(0, 0);

    /// <summary>
    /// Jobs whose run had been asked to stop (<see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>): discarded instead of going back,
    /// uncharged. Counted in none of the others.
    /// </summary>
    public int Cancelled { get; init; }

    /// <summary>Every job recovered.</summary>
    public int Total => Retried + Failed + Released + Cancelled;
}

/// <summary>A claim with its owner, for operators.</summary>
/// <param name="ClaimId">The claim id.</param>
/// <param name="JobId">The job id.</param>
/// <param name="Kind">The job kind.</param>
/// <param name="Queue">The queue.</param>
/// <param name="Attempt">The attempt the claim runs.</param>
/// <param name="ClaimedAt">When it was claimed.</param>
/// <param name="ClaimAge">How long ago, by the database clock.</param>
/// <param name="ProcessId">The owner's row id.</param>
/// <param name="ProcessName">The owner's name.</param>
/// <param name="Hostname">The owner's host.</param>
/// <param name="Pid">The owner's OS pid.</param>
/// <param name="HeartbeatAge">How long since the owner's last heartbeat.</param>
/// <remarks><see cref="LeaseRemaining"/> is the owner's lease left by the database clock.</remarks>
public sealed record ClaimInfo(
    long ClaimId,
    long JobId,
    string Kind,
    string Queue,
    int Attempt,
    DateTimeOffset ClaimedAt,
    TimeSpan ClaimAge,
    long ProcessId,
    string ProcessName,
    string Hostname,
    int Pid,
    TimeSpan HeartbeatAge)
{
    /// <summary>True when the owner's heartbeat is older than <paramref name="aliveThreshold"/>: the owner is probably dead.</summary>
    /// <param name="aliveThreshold">The configured alive threshold.</param>
    /// <returns>Whether the claim is stale.</returns>
    public bool IsStale(TimeSpan aliveThreshold) => HeartbeatAge > aliveThreshold || LeaseRemaining < TimeSpan.Zero;

    /// <summary>The owner's lease left, by the database clock; negative once expired.</summary>
    public TimeSpan LeaseRemaining { get; init; } = TimeSpan.MaxValue;

    /// <summary>How far the run got, in [0, 1], as it last reported (<see cref="JobContext.ReportProgressAsync"/>); null when it has not.</summary>
    public double? Progress { get; init; }

    /// <summary>The message of the run's last progress report, if any.</summary>
    public string? ProgressMessage { get; init; }

    /// <summary>The reason of a cancel asked for that the run has not ended on yet; null when none was.</summary>
    public string? CancelRequested { get; init; }
}

/// <summary>Parameters of <see cref="IKeelStorage.ClaimsListAsync"/>.</summary>
/// <param name="ProcessId">Only this process's claims, when set.</param>
/// <param name="StaleAfter">Only claims whose owner's heartbeat is older than this, when set.</param>
/// <param name="Limit">The most rows, oldest claims first.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ClaimsListParams(long? ProcessId, TimeSpan? StaleAfter, int Limit, DateTimeOffset? Now);

/// <summary>What an operator does with chosen claims.</summary>
public enum ClaimAction
{
    /// <summary>Back to ready; the interrupted run is not counted as an attempt.</summary>
    Release,

    /// <summary>Failed with a <c>WorkerLostException</c>.</summary>
    Fail,
}

/// <summary>Parameters of <see cref="IKeelStorage.ClaimsRecoverAsync"/>.</summary>
/// <param name="ClaimIds">The claims, whoever owns them.</param>
/// <param name="Action">Release or fail.</param>
/// <param name="Cause">Recorded with failed jobs.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ClaimsRecoverParams(IReadOnlyList<long> ClaimIds, ClaimAction Action, WorkerLostCause Cause, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ProcessesSessionEndedAsync"/>.</summary>
/// <param name="ProcessIds">The processes to check.</param>
/// <param name="MinimumServerUptime">
/// Report nothing while the database server has been up for less than this: right after a restart every
/// session has ended, but live processes are still reconnecting and re-taking their locks.
/// </param>
public sealed record ProcessesSessionParams(IReadOnlyList<long> ProcessIds, TimeSpan MinimumServerUptime);

namespace Keel.Storage;

/// <summary>Which jobs an operation applies to: given ids, or every job matching a filter.</summary>
/// <param name="Queue">Only this queue (exact name).</param>
/// <param name="Kind">Only this kind.</param>
/// <param name="ExceptionType">Only failed jobs whose last error has this exception type (full name).</param>
/// <param name="FailedAfter">Only jobs that failed at or after this time.</param>
/// <param name="FailedBefore">Only jobs that failed before this time.</param>
public sealed record JobFilter(
    string? Queue = null,
    string? Kind = null,
    string? ExceptionType = null,
    DateTimeOffset? FailedAfter = null,
    DateTimeOffset? FailedBefore = null);

/// <summary>Parameters of <see cref="IKeelStorage.JobsRetryAsync"/> and <see cref="IKeelStorage.JobsDiscardAsync"/>.</summary>
/// <param name="JobIds">These jobs; null means every job matching <paramref name="Filter"/>.</param>
/// <param name="Filter">The filter when <paramref name="JobIds"/> is null (null matches every job).</param>
/// <param name="States">For discard: which states may be discarded (claimed jobs never are). Ignored by retry, which takes failed jobs only.</param>
/// <param name="BatchSize">The most jobs one call changes; call again until it returns 0.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record JobsSelectionParams(
    IReadOnlyList<long>? JobIds,
    JobFilter? Filter,
    IReadOnlyCollection<JobState>? States,
    int BatchSize,
    DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.JobRunNowAsync"/>.</summary>
/// <param name="JobId">A scheduled job (made ready now, subject to its concurrency limit) or a blocked one (made ready now, bypassing its limit).</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record JobRunNowParams(long JobId, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.QueuePauseAsync"/>.</summary>
/// <param name="Queue">The queue name (literal).</param>
/// <param name="Paused">True pauses, false resumes.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record QueuePauseParams(string Queue, bool Paused, DateTimeOffset? Now);

/// <summary>A queue's counts.</summary>
/// <param name="Name">The queue.</param>
/// <param name="Ready">Jobs waiting for a worker.</param>
/// <param name="Scheduled">Jobs waiting for their time.</param>
/// <param name="Claimed">Jobs in progress.</param>
/// <param name="Blocked">Jobs waiting for a concurrency permit.</param>
/// <param name="Failed">Jobs failed for good.</param>
/// <param name="OldestReadyAge">How long the oldest ready job has waited; null when none is ready.</param>
/// <param name="Paused">Whether workers skip it.</param>
public sealed record QueueInfo(string Name, long Ready, long Scheduled, long Claimed, long Blocked, long Failed, TimeSpan? OldestReadyAge, bool Paused);

/// <summary>Parameters of <see cref="IKeelStorage.JobsClearFinishedAsync"/>.</summary>
/// <param name="OlderThan">Delete finished and discarded jobs that ended longer ago than this.</param>
/// <param name="BatchSize">The most jobs one call deletes.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record JobsClearFinishedParams(TimeSpan OlderThan, int BatchSize, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.ConcurrencyMaintainAsync"/>.</summary>
/// <param name="BatchSize">The most keys one call repairs.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record ConcurrencyMaintainParams(int BatchSize, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.JobsListAsync"/>: newest first, paged by id.</summary>
/// <param name="State">Only jobs in this state.</param>
/// <param name="Filter">Queue, kind, exception type (of failed jobs), failure time.</param>
/// <param name="CreatedBefore">Only jobs enqueued before this time.</param>
/// <param name="CreatedAfter">Only jobs enqueued at or after this time.</param>
/// <param name="BeforeId">The next page: only jobs with a smaller id than the last one shown.</param>
/// <param name="Limit">The page size.</param>
public sealed record JobsListParams(JobState? State, JobFilter? Filter, DateTimeOffset? CreatedBefore, DateTimeOffset? CreatedAfter, long? BeforeId, int Limit);

/// <summary>One line of a job list.</summary>
/// <param name="Id">The job id.</param>
/// <param name="Kind">The kind.</param>
/// <param name="Queue">The queue.</param>
/// <param name="State">The state.</param>
/// <param name="Priority">The priority.</param>
/// <param name="Attempts">Attempts used.</param>
/// <param name="CreatedAt">When it was enqueued.</param>
/// <param name="ScheduledAt">When it may run, if scheduled.</param>
/// <param name="FinishedAt">When it finished or was discarded.</param>
/// <param name="ErrorType">The last error's exception type, for failed jobs.</param>
/// <param name="ErrorMessage">The last error's message, for failed jobs.</param>
/// <param name="ProcessId">The claiming process, for jobs in progress.</param>
/// <param name="ConcurrencyKey">Its concurrency key (<c>kind/key</c>), when its kind limits concurrency.</param>
public sealed record JobSummary(
    long Id,
    string Kind,
    string Queue,
    JobState State,
    int Priority,
    int Attempts,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ScheduledAt,
    DateTimeOffset? FinishedAt,
    string? ErrorType,
    string? ErrorMessage,
    long? ProcessId,
    string? ConcurrencyKey = null);

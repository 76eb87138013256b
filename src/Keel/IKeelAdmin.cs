using Keel.Runtime;
using Keel.Storage;

namespace Keel;

/// <summary>
/// The operator's escape hatch: see which jobs are in progress on which process, and release or fail claims
/// and prune processes by hand — the supported replacement for hand-written SQL against Keel's tables.
/// </summary>
public interface IKeelAdmin
{
    /// <summary>Every registered process with its heartbeat age and how many jobs it holds.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The processes.</returns>
    Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(CancellationToken cancellationToken = default);

    /// <summary>Claims (jobs in progress), oldest first, with owner and owner's heartbeat age.</summary>
    /// <param name="staleOnly">Only claims whose owner's heartbeat is older than the alive threshold.</param>
    /// <param name="processId">Only this process's claims.</param>
    /// <param name="limit">The most rows.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The claims.</returns>
    Task<IReadOnlyList<ClaimInfo>> ListClaimsAsync(bool staleOnly = false, long? processId = null, int limit = 1000, CancellationToken cancellationToken = default);

    /// <summary>Puts chosen claims back to ready, whoever holds them; the interrupted run is not counted.</summary>
    /// <param name="claimIds">The claims.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>How many were released.</returns>
    Task<RecoveryResult> ReleaseClaimsAsync(IReadOnlyList<long> claimIds, CancellationToken cancellationToken = default);

    /// <summary>Fails chosen claims' jobs with a <see cref="WorkerLostException"/> carrying <paramref name="reason"/>.</summary>
    /// <param name="claimIds">The claims.</param>
    /// <param name="reason">Why, recorded with each job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>How many were failed.</returns>
    Task<RecoveryResult> FailClaimsAsync(IReadOnlyList<long> claimIds, string reason, CancellationToken cancellationToken = default);

    /// <summary>Prunes a process now, whatever its heartbeat says, recovering its claims under each job's policy.</summary>
    /// <param name="processId">The process row id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>What was recovered, or null when no such process exists.</returns>
    Task<RecoveryResult?> PruneProcessAsync(long processId, CancellationToken cancellationToken = default);

    /// <summary>Runs one maintenance pass: prunes every dead process and recovers its claims.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The processes pruned.</returns>
    Task<IReadOnlyList<PrunedProcess>> PruneDeadProcessesAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Every known queue (one with jobs in any state, finished and discarded ones until retention deletes them, or a
    /// pause), with per-state counts of live jobs, the oldest ready job's age and the paused flag.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The queues, by name.</returns>
    Task<IReadOnlyList<QueueInfo>> ListQueuesAsync(CancellationToken cancellationToken = default);

    /// <summary>Pauses a queue: its jobs stay, every worker skips it from its next poll on.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task.</returns>
    Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Resumes a paused queue; workers pick its jobs up within a polling interval.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task.</returns>
    Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Discards every ready job of a queue, in batches.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>How many jobs were discarded.</returns>
    Task<long> ClearQueueAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>
    /// Retries failed jobs — the given ids, or every failed job matching <paramref name="filter"/> — in batches:
    /// attempts start over and each job becomes ready (or blocked by its concurrency limit).
    /// </summary>
    /// <param name="jobIds">These failed jobs; null to use the filter.</param>
    /// <param name="filter">Queue, kind, exception type, failure time; null matches every failed job.</param>
    /// <param name="progress">Receives the running total after each batch.</param>
    /// <param name="cancellationToken">Cancels between batches.</param>
    /// <returns>How many jobs were retried.</returns>
    Task<long> RetryJobsAsync(IReadOnlyList<long>? jobIds, JobFilter? filter = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Discards jobs — the given ids, or those matching <paramref name="filter"/> — that are ready, scheduled, blocked or
    /// failed (limit it with <paramref name="states"/>); running jobs are never discarded (fail or release their claim).
    /// </summary>
    /// <param name="jobIds">These jobs; null to use the filter.</param>
    /// <param name="filter">The filter; null matches every job.</param>
    /// <param name="states">Which states to discard; null means ready, scheduled, blocked and failed.</param>
    /// <param name="progress">Receives the running total after each batch.</param>
    /// <param name="cancellationToken">Cancels between batches.</param>
    /// <returns>How many jobs were discarded.</returns>
    Task<long> DiscardJobsAsync(IReadOnlyList<long>? jobIds, JobFilter? filter = null, IReadOnlyCollection<JobState>? states = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels a job in any state: one that has not started (ready, scheduled, blocked, awaiting) is discarded now; a running one is
    /// asked to stop — its cancellation token fires within a second with <see cref="JobContext.CancellationReason"/>
    /// <c>cancelled</c>, and it ends discarded, escalated like a job past its timeout if it does not return within
    /// <see cref="KeelOptions.CancellationGrace"/>. The reason goes into the job's run history. A cancelled job is never
    /// retried unless someone asks.
    /// </summary>
    /// <param name="jobId">The job.</param>
    /// <param name="reason">Who cancels it and why, for its history and <see cref="JobContext.CancellationMessage"/>; null records "cancelled by an operator".</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>What was done.</returns>
    Task<CancelResult> CancelAsync(long jobId, string? reason = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels a job as <see cref="CancelAsync(long, string, CancellationToken)"/> does, or — with
    /// <see cref="CancelOptions.Resume"/> — stops its running run and puts the job back in its queue with its checkpoint,
    /// uncounted, so a later run continues from it.
    /// </summary>
    /// <param name="jobId">The job.</param>
    /// <param name="options">The reason, and whether the job resumes.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>What was done.</returns>
    Task<CancelResult> CancelAsync(long jobId, CancelOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels a job as <see cref="CancelAsync(long, string, CancellationToken)"/> does, without a reason. True when it was discarded or its run was asked
    /// to stop (<see cref="CancelResult.Cancelled"/>, <see cref="CancelResult.Requested"/>,
    /// <see cref="CancelResult.AlreadyRequested"/>).
    /// </summary>
    /// <param name="jobId">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>Whether it was cancelled or asked to stop.</returns>
    Task<bool> CancelJobAsync(long jobId, CancellationToken cancellationToken = default);

    /// <summary>Runs a scheduled job now (subject to its concurrency limit) or a blocked job now (bypassing it).</summary>
    /// <param name="jobId">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>False when the job is neither scheduled nor blocked.</returns>
    Task<bool> RunJobNowAsync(long jobId, CancellationToken cancellationToken = default);
}

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
}

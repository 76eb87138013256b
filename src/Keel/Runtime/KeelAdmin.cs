using Keel.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Keel.Runtime;

/// <summary>The <see cref="IKeelAdmin"/> over the store.</summary>
internal sealed class KeelAdmin(IKeelStorage storage, IOptions<KeelOptions> options, ILoggerFactory loggerFactory, KeelClock clock) : IKeelAdmin
{
    private static readonly WorkerLostCause OperatorPrune = new("operator", "pruned by an operator");

    public Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(CancellationToken cancellationToken = default)
        => storage.ProcessesListAsync(new ProcessesListParams(null, clock.StorageNow), cancellationToken);

    public Task<IReadOnlyList<ClaimInfo>> ListClaimsAsync(bool staleOnly = false, long? processId = null, int limit = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return storage.ClaimsListAsync(new ClaimsListParams(processId, staleOnly ? options.Value.AliveThreshold : null, limit, clock.StorageNow), cancellationToken);
    }

    public Task<RecoveryResult> ReleaseClaimsAsync(IReadOnlyList<long> claimIds, CancellationToken cancellationToken = default)
        => storage.ClaimsRecoverAsync(new ClaimsRecoverParams(claimIds, ClaimAction.Release, new WorkerLostCause("operator", "released by an operator"), clock.StorageNow), cancellationToken);

    public Task<RecoveryResult> FailClaimsAsync(IReadOnlyList<long> claimIds, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        return storage.ClaimsRecoverAsync(new ClaimsRecoverParams(claimIds, ClaimAction.Fail, new WorkerLostCause("operator", "failed by an operator: " + reason), clock.StorageNow), cancellationToken);
    }

    public Task<RecoveryResult?> PruneProcessAsync(long processId, CancellationToken cancellationToken = default)
        => storage.ProcessRecoverAsync(new ProcessRecoverParams(processId, null, OperatorPrune, clock.StorageNow), cancellationToken);

    public Task<IReadOnlyList<PrunedProcess>> PruneDeadProcessesAsync(CancellationToken cancellationToken = default)
        => new Maintenance(storage, options.Value, loggerFactory.CreateLogger("Keel.Maintenance"), clock, static () => new HashSet<long>()).RunOnceAsync(cancellationToken);
}

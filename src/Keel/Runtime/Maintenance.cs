using System.Globalization;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>A process (or the rows of one OS process) maintenance pruned, and what became of its claims.</summary>
/// <param name="Process">The process as it was (the first row of its group).</param>
/// <param name="Cause">Why it was considered dead.</param>
/// <param name="Recovery">What happened to its jobs.</param>
public sealed record PrunedProcess(ProcessInfo Process, WorkerLostCause Cause, RecoveryResult Recovery)
{
    /// <summary>Every row pruned together with <see cref="Process"/>: the rows of one OS process.</summary>
    public IReadOnlyList<ProcessInfo> Group { get; init; } = [];
}

/// <summary>
/// Finds dead processes and recovers their claims (DESIGN §2.4). Every <see cref="KeelOptions.LivenessCheckInterval"/>
/// it checks the certain signs of death — a process on this host (same boot id and pid namespace) whose pid with its
/// start time no longer runs; a PostgreSQL session lock that stayed free across probes for
/// <see cref="KeelOptions.SessionGracePeriod"/> — and every <see cref="KeelOptions.PruneInterval"/> the leases that
/// expired. One probe is never proof: the grace restarts whenever this pruner's own probing failed (a database restart
/// ends every session; live processes take their locks again when it is back), and leases are judged only once this
/// pruner has itself been connected long enough for live processes to have renewed theirs. The rows of one OS process
/// are pruned together, so blame (DESIGN §2.5) sees every job it was running.
/// </summary>
internal sealed class Maintenance(IKeelStorage storage, KeelOptions options, ILogger logger, KeelClock clock, Func<IReadOnlySet<long>> ownProcesses)
{
    private static readonly TimeSpan RetentionInterval = TimeSpan.FromMinutes(1);

    // A few seconds of a busy worker's deletes; small enough that the claim's index walk stays short.
    internal const long HotTablesDeadRowsThreshold = 10_000;

    private readonly OutageLog _outage = new(logger, "maintenance", clock.TimeProvider);
    private readonly Dictionary<long, long> _sessionFreeSince = [];
    private long _nextHeartbeatPass;
    private long _nextRetention;
    private long _connectedSince;

    public Task RunAsync(CancellationToken stoppingToken)
        => Poller.RunAsync(
            async ct =>
            {
                await RunDueAsync(ct);
                return Cadence;
            },
            _outage,
            "maintenance",
            clock.TimeProvider,
            null,
            stoppingToken);

    /// <summary>
    /// Tests: act as if this pruner had been connected for long already (a fresh pruner judges leases only once live
    /// processes had the time to renew theirs, and charges a lapse only once it saw the database up for a whole lease).
    /// </summary>
    internal void AssumeConnectedFor(TimeSpan span) => _connectedSince = clock.TimeProvider.GetTimestamp() - Ticks(span);

    /// <summary>How often <see cref="RunDueAsync"/> should be called.</summary>
    public TimeSpan Cadence => options.LivenessCheckInterval < options.PruneInterval ? options.LivenessCheckInterval : options.PruneInterval;

    /// <summary>
    /// One pass at the <see cref="Cadence"/>: always the certain signs; every <see cref="KeelOptions.PruneInterval"/> also
    /// expired leases (and retention once a minute, and the hot tables' vacuum).
    /// </summary>
    public Task<IReadOnlyList<PrunedProcess>> RunDueAsync(CancellationToken cancellationToken)
    {
        var now = clock.TimeProvider.GetTimestamp();
        var full = now >= _nextHeartbeatPass;
        if (full)
        {
            _nextHeartbeatPass = now + Ticks(options.PruneInterval);
        }

        return full ? RunFullAsync(cancellationToken) : RunOnceAsync(cancellationToken, leases: false);
    }

    private async Task<IReadOnlyList<PrunedProcess>> RunFullAsync(CancellationToken cancellationToken)
    {
        var pruned = await RunOnceAsync(cancellationToken);
        try
        {
            await storage.HotTablesVacuumAsync(HotTablesDeadRowsThreshold, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Log.MaintenanceError(logger, e, options.PruneInterval); // Cleaning can wait for the next pass; pruning was done.
        }

        return pruned;
    }

    /// <summary>
    /// Deletes finished and discarded jobs older than <see cref="KeelOptions.ClearFinishedJobsAfter"/>, a batch at a
    /// time (at most 20 batches a pass, so one pass never holds the database for long). Returns how many were deleted.
    /// </summary>
    public async Task<long> ClearFinishedJobsAsync(CancellationToken cancellationToken)
    {
        if (options.ClearFinishedJobsAfter is not { } keep)
        {
            return 0;
        }

        const int batchSize = 500;
        long deleted = 0;
        for (var batch = 0; batch < 20; batch++)
        {
            var count = await storage.JobsClearFinishedAsync(new JobsClearFinishedParams(keep, batchSize, clock.StorageNow), cancellationToken);
            deleted += count;
            if (count < batchSize)
            {
                break;
            }
        }

        if (deleted > 0)
        {
            Log.FinishedJobsCleared(logger, deleted, keep);
        }

        return deleted;
    }

    /// <summary>One pass: prunes every dead process found and recovers its claims (and, once a minute, applies retention).</summary>
    /// <param name="cancellationToken">Stops the pass.</param>
    /// <param name="leases">False: only the certain signs (pid gone, session ended); expired leases and retention wait.</param>
    public async Task<IReadOnlyList<PrunedProcess>> RunOnceAsync(CancellationToken cancellationToken, bool leases = true)
    {
        try
        {
            var pruned = await PassAsync(leases, cancellationToken);
            _outage.Succeeded();
            return pruned;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // This pruner lost the database: whatever it saw of sessions and leases may be the outage's doing.
            _sessionFreeSince.Clear();
            _connectedSince = 0;
            throw;
        }
    }

    private async Task<IReadOnlyList<PrunedProcess>> PassAsync(bool leases, CancellationToken cancellationToken)
    {
        if (leases && clock.TimeProvider.GetTimestamp() >= _nextRetention)
        {
            _nextRetention = clock.TimeProvider.GetTimestamp() + Ticks(RetentionInterval);
            await ClearFinishedJobsAsync(cancellationToken);
        }

        var own = ownProcesses();
        var processes = (await storage.ProcessesListAsync(new ProcessesListParams(null, clock.StorageNow), cancellationToken)).Where(p => !own.Contains(p.Id)).ToList();
        var now = clock.TimeProvider.GetTimestamp();
        if (_connectedSince == 0)
        {
            _connectedSince = now;
        }

        var connectedFor = clock.TimeProvider.GetElapsedTime(_connectedSince);
        var sessionEnded = await SessionsEndedLongEnoughAsync(processes, now, cancellationToken);

        var decisions = new List<(ProcessInfo Process, WorkerLostCause Cause, RecoverCondition Condition, RecoveryCharge Charge)>();
        foreach (var process in processes)
        {
            var ownChild = process.SupervisorId is { } supervisor && own.Contains(supervisor);
            if (!ownChild && HostProcess.IsGone(process.HostId, process.Pid, process.PidStartTicks))
            {
                decisions.Add((process, Cause("process-missing", $"process missing: {Describe(process)} no longer runs on this host (pid {process.Pid} with its start time is gone)"), RecoverCondition.None, RecoveryCharge.Blame));
            }
            else if (!ownChild && sessionEnded.Contains(process.Id))
            {
                decisions.Add((process, Cause("session-ended", $"session ended: the database session of {Describe(process)} stayed gone for over {options.SessionGracePeriod.TotalSeconds:0.#} s"), RecoverCondition.None, RecoveryCharge.Blame));
            }
            else if (leases && process.LeaseExpired && connectedFor >= options.HeartbeatInterval * 2)
            {
                // Charged only when this pruner saw the database up for the whole lease: then the silence was the
                // process's own (dead, frozen, cut off), not an outage everyone shared.
                var charge = connectedFor >= options.AliveThreshold ? RecoveryCharge.Blame : RecoveryCharge.None;
                decisions.Add((process, Cause("lease-expired", $"lease expired: {Describe(process)} last renewed its lease at {process.LastHeartbeatAt:O}, {process.HeartbeatAge.TotalSeconds:0.#} s ago; it ran out {(-process.LeaseRemaining).TotalSeconds:0.#} s ago"), RecoverCondition.LeaseExpired, charge));
            }
        }

        // The rows of one OS process go together (an in-process host registers one per role): the jobs they held ran
        // beside each other, which is what blame must see.
        var pruned = new List<PrunedProcess>();
        foreach (var group in decisions.GroupBy(d => OsProcessKey(d.Process)))
        {
            var first = group.First();
            var rows = group.Select(d => d.Process).ToList();
            var recovery = await StorageRetry.RunAsync(
                storage,
                _outage,
                "prune process",
                ct => storage.ProcessRecoverAsync(new ProcessRecoverParams([.. rows.Select(p => p.Id)], first.Condition, first.Cause, clock.StorageNow) { Charge = first.Charge }, ct),
                cancellationToken);
            if (recovery is null)
            {
                continue;
            }

            foreach (var row in rows)
            {
                _sessionFreeSince.Remove(row.Id);
                Log.ProcessPruned(logger, row.Name, row.Id, first.Cause.Code, recovery.Retried, recovery.Failed, first.Cause.Description);
            }

            KeelMetrics.RecordRecovery(first.Cause.Code, recovery);
            pruned.Add(new PrunedProcess(first.Process, first.Cause, recovery) { Group = rows });
        }

        return pruned;
    }

    /// <summary>
    /// Probes the session locks of the processes that hold one and returns those whose lock this pruner has seen free,
    /// probe after probe, for the grace period. A lock seen held again forgets the process.
    /// </summary>
    private async Task<HashSet<long>> SessionsEndedLongEnoughAsync(List<ProcessInfo> processes, long now, CancellationToken cancellationToken)
    {
        var candidates = processes.Where(p => p.Liveness == "session").Select(p => p.Id).ToList();
        var ended = candidates.Count == 0
            ? []
            : (await storage.ProcessesSessionEndedAsync(new ProcessesSessionParams(candidates, options.AliveThreshold), cancellationToken)).ToHashSet();
        foreach (var id in _sessionFreeSince.Keys.Where(id => !ended.Contains(id)).ToList())
        {
            _sessionFreeSince.Remove(id);
        }

        var longEnough = new HashSet<long>();
        foreach (var id in ended)
        {
            if (!_sessionFreeSince.TryGetValue(id, out var since))
            {
                _sessionFreeSince[id] = now;
                continue;
            }

            if (clock.TimeProvider.GetElapsedTime(since, now) >= options.SessionGracePeriod)
            {
                longEnough.Add(id);
            }
        }

        return longEnough;
    }

    private static string OsProcessKey(ProcessInfo process)
        => process.HostId is { } host && process.PidStartTicks is { } ticks
            ? string.Create(CultureInfo.InvariantCulture, $"{host}|{process.Pid}|{ticks}")
            : string.Create(CultureInfo.InvariantCulture, $"row|{process.Id}");

    private static string Describe(ProcessInfo process) => string.Create(CultureInfo.InvariantCulture, $"{process.Kind} {process.Name} (pid {process.Pid} on {process.Hostname})");

    private static WorkerLostCause Cause(string code, string description) => new(code, description);

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * clock.TimeProvider.TimestampFrequency);
}

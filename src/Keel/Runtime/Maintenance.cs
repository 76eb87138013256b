using System.Diagnostics;
using System.Globalization;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>A process maintenance pruned, and what became of its claims.</summary>
/// <param name="Process">The process as it was.</param>
/// <param name="Cause">Why it was considered dead.</param>
/// <param name="Recovery">What happened to its jobs.</param>
public sealed record PrunedProcess(ProcessInfo Process, WorkerLostCause Cause, RecoveryResult Recovery);

/// <summary>
/// Finds dead processes and recovers their claims: every <see cref="KeelOptions.PruneInterval"/>, processes whose
/// heartbeat is older than <see cref="KeelOptions.AliveThreshold"/>, and — without waiting for the threshold —
/// processes whose database session has ended (PostgreSQL advisory locks) and processes on this host whose pid no
/// longer runs (pid plus start time, so a reused pid is not mistaken for it).
/// </summary>
internal sealed class Maintenance(IKeelStorage storage, KeelOptions options, ILogger logger, KeelClock clock, Func<IReadOnlySet<long>> ownProcesses)
{
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunDueAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.MaintenanceError(logger, e, Cadence);
            }

            try
            {
                await Task.Delay(Cadence, clock.TimeProvider, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>How often <see cref="RunDueAsync"/> should be called.</summary>
    public TimeSpan Cadence => options.LivenessCheckInterval < options.PruneInterval ? options.LivenessCheckInterval : options.PruneInterval;

    private long _nextHeartbeatPass;

    /// <summary>
    /// One pass at the <see cref="Cadence"/>: always prunes processes whose session ended or whose pid is gone; every
    /// <see cref="KeelOptions.PruneInterval"/> also those whose heartbeat expired (and applies retention once a minute).
    /// </summary>
    public Task<IReadOnlyList<PrunedProcess>> RunDueAsync(CancellationToken cancellationToken)
    {
        var now = clock.TimeProvider.GetTimestamp();
        var heartbeats = now >= _nextHeartbeatPass;
        if (heartbeats)
        {
            _nextHeartbeatPass = now + (long)(options.PruneInterval.TotalSeconds * clock.TimeProvider.TimestampFrequency);
        }

        return heartbeats ? RunFullAsync(cancellationToken) : RunOnceAsync(cancellationToken, heartbeats: false);
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

    private static readonly TimeSpan RetentionInterval = TimeSpan.FromMinutes(1);

    // A few seconds of a busy worker's deletes; small enough that the claim's index walk stays short.
    internal const long HotTablesDeadRowsThreshold = 10_000;
    private long _nextRetention;

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
    /// <param name="heartbeats">False: only the certain signs (session ended, pid gone); heartbeat expiry and retention wait.</param>
    public async Task<IReadOnlyList<PrunedProcess>> RunOnceAsync(CancellationToken cancellationToken, bool heartbeats = true)
    {
        if (heartbeats && clock.TimeProvider.GetTimestamp() >= _nextRetention)
        {
            _nextRetention = clock.TimeProvider.GetTimestamp() + (long)(RetentionInterval.TotalSeconds * clock.TimeProvider.TimestampFrequency);
            await ClearFinishedJobsAsync(cancellationToken);
        }

        var own = ownProcesses();
        var pruned = new List<PrunedProcess>();
        var processes = (await storage.ProcessesListAsync(new ProcessesListParams(null, clock.StorageNow), cancellationToken)).Where(p => !own.Contains(p.Id)).ToList();
        var sessionEnded = processes.Count == 0
            ? []
            : (await storage.ProcessesSessionEndedAsync(new ProcessesSessionParams([.. processes.Select(p => p.Id)], options.AliveThreshold), cancellationToken)).ToHashSet();
        foreach (var process in processes)
        {
            WorkerLostCause cause;
            TimeSpan? staleAfter;
            if (process.HeartbeatAge > options.AliveThreshold)
            {
                if (!heartbeats)
                {
                    continue; // The full pass prunes it, with the threshold re-checked under the row lock.
                }

                cause = new WorkerLostCause("heartbeat-expired", string.Create(CultureInfo.InvariantCulture, $"heartbeat expired: {process.Kind} {process.Name} (pid {process.Pid} on {process.Hostname}) last beat at {process.LastHeartbeatAt:O}, {process.HeartbeatAge.TotalSeconds:0.#} s ago, over the {options.AliveThreshold.TotalSeconds:0.#} s threshold"));
                staleAfter = options.AliveThreshold;
            }
            else if (process.SupervisorId is { } supervisor && own.Contains(supervisor))
            {
                // Our own child: its exit reaches us with the exit code or signal, a better cause than a lost session.
                continue;
            }
            else if (sessionEnded.Contains(process.Id))
            {
                cause = new WorkerLostCause("session-ended", string.Create(CultureInfo.InvariantCulture, $"session ended: the database session of {process.Kind} {process.Name} (pid {process.Pid} on {process.Hostname}) is gone"));
                staleAfter = null;
            }
            else if (IsDeadOnThisHost(process))
            {
                cause = new WorkerLostCause("process-missing", string.Create(CultureInfo.InvariantCulture, $"process missing: {process.Kind} {process.Name} (pid {process.Pid}) no longer runs on {process.Hostname}"));
                staleAfter = null;
            }
            else
            {
                continue;
            }

            var recovery = await StorageRetry.RunAsync(
                storage,
                logger,
                "prune process",
                ct => storage.ProcessRecoverAsync(new ProcessRecoverParams(process.Id, staleAfter, cause, clock.StorageNow), ct),
                cancellationToken);
            if (recovery is not null)
            {
                Log.ProcessPruned(logger, process.Name, process.Id, cause.Code, recovery.Retried, recovery.Failed, cause.Description);
                KeelMetrics.RecordRecovery(cause.Code, recovery);
                pruned.Add(new PrunedProcess(process, cause, recovery));
            }
        }

        return pruned;
    }

    /// <summary>True when the row names this host and its pid is gone or belongs to a younger process.</summary>
    internal static bool IsDeadOnThisHost(ProcessInfo process)
    {
        if (!string.Equals(process.Hostname, ProcessIdentity.Hostname, StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            using var running = Process.GetProcessById(process.Pid);
            if (running.HasExited)
            {
                return true;
            }

            var startedAt = new DateTimeOffset(running.StartTime.ToUniversalTime(), TimeSpan.Zero);
            // A pid reused by a later process starts after the row's process did; allow for clock rounding.
            return (startedAt - process.StartedAt).Duration() > TimeSpan.FromSeconds(2);
        }
        catch (ArgumentException)
        {
            return true; // No process has this pid.
        }
        catch (InvalidOperationException)
        {
            return true; // It exited while we looked.
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return true; // Its /proc entry vanished while we read it: it exited.
        }
    }
}

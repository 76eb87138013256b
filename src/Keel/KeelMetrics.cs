using System.Diagnostics.Metrics;

namespace Keel;

/// <summary>
/// Keel's meter. Instruments follow OpenTelemetry naming (dotted lower-case names, UCUM units, <c>{annotation}</c>
/// for counts); the full set, with tags and meaning, is documented in docs/telemetry.md.
/// </summary>
public static class KeelMetrics
{
    /// <summary>The meter name to subscribe to (<c>Keel</c>).</summary>
    public const string MeterName = "Keel";

    private static readonly Meter Meter = new(MeterName, typeof(KeelMetrics).Assembly.GetName().Version?.ToString());

    // The last database snapshot the gauges report; written by TelemetrySnapshotRefresher, never by a callback.
    private static TelemetrySnapshot? _snapshot;

    /// <summary>Jobs accepted by the client (or a recurring task), tagged with queue and kind.</summary>
    internal static readonly Counter<long> Enqueued = Meter.CreateCounter<long>("keel.job.enqueued", "{job}", "Jobs enqueued.");

    /// <summary>Batches started by the client.</summary>
    internal static readonly Counter<long> BatchesStarted = Meter.CreateCounter<long>("keel.batch.started", "{batch}", "Batches started.");

    /// <summary>Batches whose last pending job settled, tagged with the outcome (succeeded or failed).</summary>
    internal static readonly Counter<long> BatchesCompleted = Meter.CreateCounter<long>("keel.batch.completed", "{batch}", "Batches whose every job settled; their callbacks were enqueued.");

    /// <summary>Batch callbacks enqueued, tagged with the event (success, complete, failure).</summary>
    internal static readonly Counter<long> BatchCallbacks = Meter.CreateCounter<long>("keel.batch.callbacks", "{job}", "Batch callback jobs enqueued.");

    /// <summary>Jobs a worker claimed.</summary>
    internal static readonly Counter<long> Claimed = Meter.CreateCounter<long>("keel.job.claimed", "{job}", "Jobs claimed by a worker.");

    /// <summary>Runs that succeeded and were written under their claim.</summary>
    internal static readonly Counter<long> Finished = Meter.CreateCounter<long>("keel.job.finished", "{job}", "Jobs that finished successfully.");

    /// <summary>Jobs that failed for good (no attempts left, discard-on exception, bad arguments, unknown kind).</summary>
    internal static readonly Counter<long> Failed = Meter.CreateCounter<long>("keel.job.failed", "{job}", "Jobs that failed for good.");

    /// <summary>Attempts that failed with a retry scheduled.</summary>
    internal static readonly Counter<long> Retried = Meter.CreateCounter<long>("keel.job.retried", "{job}", "Failed attempts with a retry scheduled.");

    /// <summary>Jobs discarded by an operator (discard, cancel, clear queue).</summary>
    internal static readonly Counter<long> Discarded = Meter.CreateCounter<long>("keel.job.discarded", "{job}", "Jobs discarded before they ran, or after they failed, by an operator.");

    /// <summary>Jobs a worker claimed ahead of its threads that went back to their queue unstarted, by reason.</summary>
    internal static readonly Counter<long> ClaimedAheadReturned = Meter.CreateCounter<long>("keel.job.claimed_ahead.returned", "{job}", "Jobs claimed ahead of a worker's threads that went back to their queue unstarted (stop, lease-lost, pruned, suspect, claim-ahead).");

    /// <summary>Jobs an enqueue handed straight to an idle worker's offer, taken by that worker (docs/architecture.md, direct hand-off).</summary>
    internal static readonly Counter<long> HandedOff = Meter.CreateCounter<long>("keel.job.handed_off", "{job}", "Jobs an enqueue inserted already claimed by an idle worker that offered a slot, taken by that worker.");

    /// <summary>Late results rejected because their claim was no longer held (fencing), tagged with the outcome that was refused.</summary>
    internal static readonly Counter<long> LateResultsRejected = Meter.CreateCounter<long>("keel.job.late_results.rejected", "{result}", "Results of runs whose claim had been recovered by someone else; never written.");

    /// <summary>Claims recovered from lost workers, tagged with the cause code.</summary>
    internal static readonly Counter<long> WorkerLostRecoveries = Meter.CreateCounter<long>("keel.job.worker_lost", "{job}", "Jobs whose worker was lost, by cause, recovered back to ready or failed.");

    /// <summary>Cancels asked for (<see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>), tagged with the state the job was in (<c>keel.state</c>).</summary>
    internal static readonly Counter<long> CancelRequested = Meter.CreateCounter<long>("keel.job.cancel.requested", "{job}", "Cancels requested, by the state the job was in.");

    /// <summary>
    /// Jobs that ended cancelled, tagged with how (<c>keel.outcome</c>): <c>not-started</c>, <c>honoured</c> (the run
    /// returned within the grace), <c>escalated</c> (abandoned, or its process replaced), <c>process-ended</c> (recovery).
    /// </summary>
    internal static readonly Counter<long> Cancelled = Meter.CreateCounter<long>("keel.job.cancelled", "{job}", "Jobs that ended cancelled, by how their run stopped.");

    /// <summary>From a run's cancellation token firing on a cancel request to the run returning (or being given up).</summary>
    internal static readonly Histogram<double> CancelTimeToStop = Meter.CreateHistogram<double>("keel.job.cancel.time_to_stop", "s", "Time from a cancel reaching a run to the run stopping or being escalated.");

    /// <summary>How long a run took, from start to its outcome (before it is written).</summary>
    internal static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("keel.job.duration", "s", "How long a job's run took.");

    /// <summary>Claim time minus the time the job became ready.</summary>
    internal static readonly Histogram<double> QueueLatency = Meter.CreateHistogram<double>("keel.job.queue_latency", "s", "Time from a job becoming ready to a worker claiming it.");

    /// <summary>Ready jobs per queue (from the last snapshot).</summary>
    internal static readonly ObservableGauge<long> QueueDepth = Meter.CreateObservableGauge("keel.queue.depth", ObserveDepth, "{job}", "Ready jobs per queue.");

    /// <summary>Age of the oldest ready job per queue (from the last snapshot).</summary>
    internal static readonly ObservableGauge<double> OldestReadyAge = Meter.CreateObservableGauge("keel.queue.oldest_ready_age", ObserveOldestReady, "s", "Age of the oldest ready job per queue.");

    /// <summary>Age of the oldest claim (job in progress) (from the last snapshot).</summary>
    internal static readonly ObservableGauge<double> OldestClaimAge = Meter.CreateObservableGauge("keel.claim.oldest_age", ObserveOldestClaim, "s", "Age of the oldest claim (the longest-running job).");

    /// <summary>Claims whose owner's heartbeat is older than the alive threshold (from the last snapshot).</summary>
    internal static readonly ObservableGauge<long> StaleClaims = Meter.CreateObservableGauge("keel.claim.stale", ObserveStale, "{claim}", "Claims whose owning process has not heartbeaten within the alive threshold.");

    /// <summary>Registered processes with a fresh heartbeat (from the last snapshot).</summary>
    internal static readonly ObservableGauge<long> LiveProcesses = Meter.CreateObservableGauge("keel.process.live", ObserveLive, "{process}", "Registered processes whose heartbeat is within the alive threshold.");

    /// <summary>True when something listens to any of the observable gauges, so a snapshot is worth reading.</summary>
    internal static bool GaugesEnabled => QueueDepth.Enabled || OldestReadyAge.Enabled || OldestClaimAge.Enabled || StaleClaims.Enabled || LiveProcesses.Enabled;

    /// <summary>The snapshot the gauges report; null before the first refresh.</summary>
    internal static TelemetrySnapshot? Snapshot
    {
        get => Volatile.Read(ref _snapshot);
        set => Volatile.Write(ref _snapshot, value);
    }

    internal static KeyValuePair<string, object?> QueueTag(string queue) => new("keel.queue", queue);

    internal static KeyValuePair<string, object?> KindTag(string kind) => new("keel.kind", kind);

    internal static void RecordRecovery(string cause, Storage.RecoveryResult recovery)
    {
        if (recovery.Retried > 0)
        {
            WorkerLostRecoveries.Add(recovery.Retried, new("keel.cause", cause), new("keel.outcome", "retried"));
        }

        if (recovery.Failed > 0)
        {
            WorkerLostRecoveries.Add(recovery.Failed, new("keel.cause", cause), new("keel.outcome", "failed"));
        }

        if (recovery.Released > 0)
        {
            WorkerLostRecoveries.Add(recovery.Released, new("keel.cause", cause), new("keel.outcome", "released"));
        }

        if (recovery.Cancelled > 0)
        {
            Cancelled.Add(recovery.Cancelled, new KeyValuePair<string, object?>("keel.outcome", Storage.RunCauses.CancelledWithProcess));
        }
    }

    private static IEnumerable<Measurement<long>> ObserveDepth()
        => Snapshot is { } s ? s.Queues.Select(q => new Measurement<long>(q.Ready, QueueTag(q.Name))) : [];

    private static IEnumerable<Measurement<double>> ObserveOldestReady()
        => Snapshot is { } s ? s.Queues.Select(q => new Measurement<double>(q.OldestReadyAge?.TotalSeconds ?? 0, QueueTag(q.Name))) : [];

    private static IEnumerable<Measurement<double>> ObserveOldestClaim()
        => Snapshot is { } s ? [new Measurement<double>(s.OldestClaimAge?.TotalSeconds ?? 0)] : [];

    private static IEnumerable<Measurement<long>> ObserveStale()
        => Snapshot is { } s ? [new Measurement<long>(s.StaleClaims)] : [];

    private static IEnumerable<Measurement<long>> ObserveLive()
        => Snapshot is { } s ? [new Measurement<long>(s.LiveProcesses)] : [];
}

/// <summary>One read of the database state the gauges report.</summary>
/// <param name="Queues">Per queue: name, ready jobs, oldest ready age.</param>
/// <param name="OldestClaimAge">The oldest claim's age; null when nothing is claimed.</param>
/// <param name="StaleClaims">Claims whose owner's heartbeat is older than the alive threshold.</param>
/// <param name="LiveProcesses">Processes whose heartbeat is within the alive threshold.</param>
/// <param name="TakenAt">When the snapshot was read.</param>
internal sealed record TelemetrySnapshot(
    IReadOnlyList<(string Name, long Ready, TimeSpan? OldestReadyAge)> Queues,
    TimeSpan? OldestClaimAge,
    long StaleClaims,
    long LiveProcesses,
    DateTimeOffset TakenAt);

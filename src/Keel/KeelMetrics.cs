using System.Diagnostics.Metrics;

namespace Keel;

/// <summary>Keel's meter. Instruments follow OpenTelemetry naming; the full set is documented in docs/operations.md.</summary>
public static class KeelMetrics
{
    /// <summary>The meter name to subscribe to (<c>Keel</c>).</summary>
    public const string MeterName = "Keel";

    private static readonly Meter Meter = new(MeterName, typeof(KeelMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>Late results rejected because their claim was no longer held (fencing), tagged with the outcome that was refused.</summary>
    internal static readonly Counter<long> LateResultsRejected = Meter.CreateCounter<long>("keel.job.late_results.rejected", "{result}", "Results of runs whose claim had been recovered by someone else; never written.");

    /// <summary>Claims recovered from lost workers, tagged with the cause code.</summary>
    internal static readonly Counter<long> WorkerLostRecoveries = Meter.CreateCounter<long>("keel.job.worker_lost", "{job}", "Jobs whose worker was lost, by cause, recovered back to ready or failed.");

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
    }
}

using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// Reads the database state the observable gauges report (queue depths and ages, claims, live processes) every
/// <see cref="KeelOptions.TelemetryRefreshInterval"/>, and only while something listens to those gauges; the gauge
/// callbacks read the last snapshot and never touch the database.
/// </summary>
internal sealed class TelemetrySnapshotRefresher(IKeelStorage storage, KeelOptions options, ILogger logger, KeelClock clock)
{
    private const int StaleClaimsLimit = 10_000;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var interval = options.TelemetryRefreshInterval;
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            if (KeelMetrics.GaugesEnabled)
            {
                try
                {
                    await RefreshAsync(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return; // Stopping mid-refresh is a normal stop, not an error.
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    Log.TelemetrySnapshotFailed(logger, e, interval);
                }
            }

            try
            {
                await Task.Delay(interval, clock.TimeProvider, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Reads one snapshot and publishes it to the gauges.</summary>
    public async Task<TelemetrySnapshot> RefreshAsync(CancellationToken cancellationToken)
    {
        var now = clock.StorageNow;
        var queues = await storage.QueuesListAsync(now, cancellationToken);
        var oldest = await storage.ClaimsListAsync(new ClaimsListParams(null, null, 1, now), cancellationToken);
        var stale = await storage.ClaimsListAsync(new ClaimsListParams(null, options.AliveThreshold, StaleClaimsLimit, now), cancellationToken);
        var processes = await storage.ProcessesListAsync(new ProcessesListParams(null, now), cancellationToken);
        var snapshot = new TelemetrySnapshot(
            [.. queues.Select(q => (q.Name, q.Ready, q.OldestReadyAge))],
            oldest.Count > 0 ? oldest[0].ClaimAge : null,
            stale.Count,
            processes.Count(p => p.HeartbeatAge <= options.AliveThreshold),
            clock.UtcNow);
        KeelMetrics.Snapshot = snapshot;
        return snapshot;
    }
}

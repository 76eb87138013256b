using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>Moves due scheduled jobs (delayed enqueues and retries after backoff) to ready, a batch at a time.</summary>
internal sealed class Dispatcher(IKeelStorage storage, JobSignal signal, DispatcherOptions options, ILogger logger, KeelClock clock)
{
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var errorDelay = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var moved = await RunOnceAsync(stoppingToken);
                errorDelay = TimeSpan.FromMilliseconds(100);
                if (moved >= options.BatchSize)
                {
                    continue; // A full batch: there may be more due right now.
                }

                await Task.Delay(options.PollingInterval, clock.TimeProvider, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.DispatcherError(logger, e, errorDelay);
                try
                {
                    await Task.Delay(errorDelay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                errorDelay = TimeSpan.FromTicks(Math.Min(errorDelay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    /// <summary>One pass: moves up to a batch of due jobs and wakes local workers if any moved.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var moved = await StorageRetry.RunAsync(
            storage,
            logger,
            "dispatch scheduled jobs",
            ct => storage.ScheduledDispatchAsync(new ScheduledDispatchParams(options.BatchSize, clock.StorageNow), ct),
            cancellationToken);
        if (moved > 0)
        {
            Log.ScheduledDispatched(logger, moved);
            signal.Notify();
        }

        return moved;
    }
}

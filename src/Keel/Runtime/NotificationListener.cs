using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// Wakes this process's idle workers when the store reports jobs made ready elsewhere (PostgreSQL LISTEN/NOTIFY),
/// reconnecting with backoff when the connection drops. Workers still poll, so a lost notification only costs latency.
/// </summary>
internal sealed class NotificationListener(IJobNotifications notifications, JobSignal signal, ILogger logger)
{
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await notifications.ListenAsync(_ => signal.Notify(), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.NotificationListenerError(logger, e, delay);
                try
                {
                    await Task.Delay(delay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                continue;
            }

            delay = TimeSpan.FromMilliseconds(200);
        }
    }
}

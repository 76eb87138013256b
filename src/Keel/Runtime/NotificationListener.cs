using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// Wakes this process's idle workers when the store reports jobs made ready elsewhere (PostgreSQL LISTEN/NOTIFY),
/// reconnecting with backoff when the connection drops. Workers still poll, so a lost notification only costs latency.
/// </summary>
internal sealed class NotificationListener(IJobNotifications notifications, JobSignal signal, ILogger logger, TimeProvider time)
{
    private readonly OutageLog _outage = new(logger, "job notifications", time);

    public Task RunAsync(CancellationToken stoppingToken)
        => Poller.RunAsync(
            async ct =>
            {
                await notifications.ListenAsync(
                    payload =>
                    {
                        if (payload == JobNotifications.CancelRequested)
                        {
                            signal.NotifyCancels();
                        }

                        signal.Notify();
                    },
                    ct);
                return TimeSpan.FromMilliseconds(200);
            },
            _outage,
            "listen for jobs",
            time,
            null,
            stoppingToken);
}

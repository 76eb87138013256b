using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// Wakes this process's idle workers when the store reports jobs made ready elsewhere (PostgreSQL LISTEN/NOTIFY), and
/// passes them the jobs handed to them (<see cref="IJobHandOffs"/>), reconnecting with backoff when the connection
/// drops. Workers still poll, and check their offers, so a lost notification only costs latency.
/// </summary>
internal sealed class NotificationListener(IJobNotifications notifications, JobSignal signal, ILogger logger, TimeProvider time)
{
    private readonly OutageLog _outage = new(logger, "job notifications", time);
    private readonly IJobHandOffs? _handOffs = notifications as IJobHandOffs;

    public Task RunAsync(CancellationToken stoppingToken)
        => Poller.RunAsync(
            async ct =>
            {
                try
                {
                    await notifications.ListenAsync(OnNotification, ct);
                }
                finally
                {
                    signal.Listening = false;
                }

                return TimeSpan.FromMilliseconds(200);
            },
            _outage,
            "listen for jobs",
            time,
            null,
            stoppingToken);

    private void OnNotification(string payload)
    {
        if (payload == JobNotifications.Listening)
        {
            signal.Listening = true;
            return;
        }

        if (_handOffs is not null && TryReadHandOff(payload) is { } handOff)
        {
            try
            {
                signal.HandOff(handOff);
            }
#pragma warning disable CA1031 // Never into the connection's notification handler: the worker's check settles the offer.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Log.HandOffUnreadable(logger, e);
            }

            return;
        }

        if (payload == JobNotifications.CancelRequested)
        {
            signal.NotifyCancels();
        }

        signal.Notify();
    }

    private HandOff? TryReadHandOff(string payload)
    {
        try
        {
            return _handOffs!.TryReadHandOff(payload, out var handOff) ? handOff : null;
        }
#pragma warning disable CA1031 // A payload this version cannot read: its offer is settled by the worker's own check.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.HandOffUnreadable(logger, e);
            return null;
        }
    }
}

namespace Keel.Runtime;

/// <summary>
/// The one loop shape of Keel's background services (worker, dispatcher, scheduler, maintenance, listeners): a pass
/// returns how long to wait before the next; a failed pass is logged through the component's <see cref="OutageLog"/>
/// and retried with <see cref="Backoff"/>; a <see cref="Wakeup"/> cuts a wait short.
/// </summary>
internal static class Poller
{
    /// <summary>Runs <paramref name="pass"/> until <paramref name="stoppingToken"/> is cancelled.</summary>
    /// <param name="pass">One pass; returns the wait before the next (zero: at once; infinite: until woken).</param>
    /// <param name="outage">Where failures are logged.</param>
    /// <param name="operation">What a pass does, for the log.</param>
    /// <param name="time">The clock waits run on.</param>
    /// <param name="wakeup">Cuts a wait short when set; reset before each pass so a set during a pass is never lost.</param>
    /// <param name="stoppingToken">Stops the loop.</param>
    public static async Task RunAsync(Func<CancellationToken, Task<TimeSpan>> pass, OutageLog outage, string operation, TimeProvider time, Wakeup? wakeup, CancellationToken stoppingToken)
    {
        var backoff = Backoff.ForLoop();
        while (!stoppingToken.IsCancellationRequested)
        {
            wakeup?.Reset();
            TimeSpan delay;
            try
            {
                delay = await pass(stoppingToken);
                backoff.Reset();
                outage.Succeeded();
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // A background loop never dies of a failed pass: it logs and tries again.
            catch (Exception e)
#pragma warning restore CA1031
            {
                delay = backoff.Next();
                outage.Failed(e, operation, delay);
            }

            if (delay == TimeSpan.Zero)
            {
                continue;
            }

            if (wakeup is not null)
            {
                await wakeup.WaitAsync(delay, stoppingToken);
                continue;
            }

            try
            {
                await Task.Delay(delay, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}

using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// Logs a component's database trouble as state changes: the first failure once (warning, with its stack trace),
/// later ones of the same outage at debug, and the recovery with how long it lasted — so a 15 s outage prints two
/// lines per component, not a stack trace per retry.
/// </summary>
internal sealed class OutageLog(ILogger logger, string component, TimeProvider time)
{
    private readonly Lock _gate = new();
    private long _since;

    /// <summary>True while the last call failed.</summary>
    public bool Failing
    {
        get
        {
            lock (_gate)
            {
                return _since != 0;
            }
        }
    }

    /// <summary>A call failed; <paramref name="retryIn"/> says when it is tried again.</summary>
    public void Failed(Exception exception, string operation, TimeSpan retryIn)
    {
        bool first;
        lock (_gate)
        {
            first = _since == 0;
            if (first)
            {
                _since = time.GetTimestamp();
            }
        }

        if (first)
        {
            Log.DatabaseUnreachable(logger, exception, component, operation, exception.Message, retryIn);
        }
        else
        {
            Log.DatabaseStillUnreachable(logger, exception, component, operation, retryIn);
        }
    }

    /// <summary>A call succeeded: logs the recovery when an outage was going on.</summary>
    public void Succeeded()
    {
        long since;
        lock (_gate)
        {
            since = _since;
            if (since == 0)
            {
                return;
            }

            _since = 0;
        }

        Log.DatabaseReconnected(logger, component, time.GetElapsedTime(since));
    }
}

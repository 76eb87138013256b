using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>Retries storage operations on transient errors (busy database, restart, dropped connection) with backoff.</summary>
internal static class StorageRetry
{
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Runs <paramref name="operation"/> until it succeeds, fails with a non-transient error, or
    /// <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public static async Task<T> RunAsync<T>(IKeelStorage storage, ILogger logger, string name, Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                return await operation(cancellationToken);
            }
            catch (Exception e) when (storage.IsTransient(e) && !cancellationToken.IsCancellationRequested)
            {
                Log.TransientStorageError(logger, e, name, delay);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
            }
        }
    }
}

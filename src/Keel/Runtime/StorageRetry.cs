using Keel.Storage;

namespace Keel.Runtime;

/// <summary>Retries storage operations on transient errors (busy database, restart, dropped connection) with backoff.</summary>
internal static class StorageRetry
{
    /// <summary>
    /// Runs <paramref name="operation"/> until it succeeds, fails with a non-transient error, or
    /// <paramref name="cancellationToken"/> is cancelled; the outage, if any, is logged once through <paramref name="outage"/>.
    /// </summary>
    public static async Task<T> RunAsync<T>(IKeelStorage storage, OutageLog outage, string name, Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        var backoff = Backoff.ForStorage();
        while (true)
        {
            try
            {
                var result = await operation(cancellationToken);
                outage.Succeeded();
                return result;
            }
            catch (Exception e) when (storage.IsTransient(e) && !cancellationToken.IsCancellationRequested)
            {
                var delay = backoff.Next();
                outage.Failed(e, name, delay);
                await Task.Delay(delay, cancellationToken);
            }
        }
    }
}

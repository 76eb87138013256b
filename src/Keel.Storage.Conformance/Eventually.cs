namespace Keel.Storage.Conformance;

/// <summary>Waits for a condition observed from outside (usually the database), with a deadline.</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> every 20 ms until it holds, or throws once <paramref name="timeout"/> has passed.</summary>
    /// <param name="condition">What to wait for.</param>
    /// <param name="timeout">How long to wait at the most.</param>
    /// <param name="description">What is awaited, for the timeout's message ("every job finishes").</param>
    /// <returns>A task completing once the condition holds.</returns>
    /// <exception cref="TimeoutException">The condition did not hold in time.</exception>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string description)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"timed out after {timeout} waiting until {description}");
            }

            await Task.Delay(20);
        }
    }
}

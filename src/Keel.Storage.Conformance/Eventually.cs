namespace Keel.Storage.Conformance;

/// <summary>Waits for a condition observed from outside (usually the database), with a deadline.</summary>
internal static class Eventually
{
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string description)
    {
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

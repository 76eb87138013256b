namespace Keel.Runtime;

/// <summary>Decides what a failed attempt leads to: another attempt (and when) or failing for good.</summary>
internal static class FailureDecision
{
    /// <summary>
    /// The time of the next attempt, or null when the job must fail now: attempts are spent, the exception is
    /// marked discard-on, or it says retrying cannot help (bad arguments, unknown kind).
    /// </summary>
    public static DateTimeOffset? RetryAt(JobOptions options, int attempt, int maxAttempts, Exception exception, DateTimeOffset now, double random01)
    {
        if (exception is JobArgumentsException or UnknownJobKindException)
        {
            return null;
        }

        var type = exception.GetType();
        if (options.DiscardOn.Any(discard => discard.IsAssignableFrom(type)))
        {
            return null;
        }

        return attempt >= maxAttempts ? null : now + Backoff(options.Backoff, attempt, random01);
    }

    /// <summary><c>min(Max, Base × 2^(attempt-1))</c>, varied by ±Jitter using <paramref name="random01"/> in [0, 1).</summary>
    public static TimeSpan Backoff(BackoffOptions backoff, int attempt, double random01)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 62);
        var raw = backoff.Base.TotalMilliseconds * Math.Pow(2, exponent);
        var capped = Math.Min(raw, backoff.Max.TotalMilliseconds);
        var jitter = Math.Clamp(backoff.Jitter, 0, 1);
        var factor = 1 + (jitter * ((random01 * 2) - 1));
        return TimeSpan.FromMilliseconds(Math.Max(0, capped * factor));
    }
}

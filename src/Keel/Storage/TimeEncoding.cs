namespace Keel.Storage;

/// <summary>Timestamps as integer microseconds since the Unix epoch (UTC), for engines without a timestamp type.</summary>
public static class TimeEncoding
{
    /// <summary>Encodes a time.</summary>
    /// <param name="value">The time.</param>
    /// <returns>Microseconds since 1970-01-01T00:00:00Z.</returns>
    public static long ToMicros(DateTimeOffset value) => (value.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    /// <summary>Decodes a time.</summary>
    /// <param name="micros">Microseconds since 1970-01-01T00:00:00Z.</param>
    /// <returns>The UTC time.</returns>
    public static DateTimeOffset FromMicros(long micros) => new(DateTimeOffset.UnixEpoch.UtcTicks + (micros * 10), TimeSpan.Zero);
}

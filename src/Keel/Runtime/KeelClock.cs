namespace Keel.Runtime;

/// <summary>
/// Keel's view of time. With the system clock, storage operations are given no time and use the database's
/// own clock, so hosts with skewed clocks still agree on heartbeats; a test clock is passed down to the SQL.
/// </summary>
internal sealed class KeelClock(TimeProvider timeProvider)
{
    public TimeProvider TimeProvider { get; } = timeProvider;

    public DateTimeOffset UtcNow => TimeProvider.GetUtcNow();

    /// <summary>The time to give a storage operation: null (the database clock) unless a test clock is in use.</summary>
    public DateTimeOffset? StorageNow => ReferenceEquals(TimeProvider, TimeProvider.System) ? null : TimeProvider.GetUtcNow();
}

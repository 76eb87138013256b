namespace Keel.Storage;

/// <summary>Parameters of <see cref="IKeelStorage.JobsCountAsync"/>.</summary>
/// <param name="Limit">Stop counting a state at this many plus one.</param>
public sealed record JobsCountParams(int Limit);

/// <summary>Jobs per state, each capped (see <see cref="IKeelStorage.JobsCountAsync"/>).</summary>
/// <param name="Counts">The count per state, at most <paramref name="Limit"/> + 1.</param>
/// <param name="Limit">The cap: a count above it means "more than <paramref name="Limit"/>".</param>
public sealed record JobCounts(IReadOnlyDictionary<JobState, long> Counts, int Limit)
{
    /// <summary>The (capped) count of one state.</summary>
    /// <param name="state">The state.</param>
    /// <returns>The count, at most <see cref="Limit"/> + 1.</returns>
    public long Of(JobState state) => Counts.TryGetValue(state, out var count) ? count : 0;

    /// <summary>True when the state holds more jobs than <see cref="Limit"/>.</summary>
    /// <param name="state">The state.</param>
    /// <returns>Whether the count was capped.</returns>
    public bool IsCapped(JobState state) => Of(state) > Limit;
}

/// <summary>Parameters of <see cref="IKeelStorage.JobsActivityAsync"/>.</summary>
/// <param name="Since">The start of the first bucket.</param>
/// <param name="BucketSize">The width of each bucket.</param>
/// <param name="Buckets">How many buckets.</param>
public sealed record JobsActivityParams(DateTimeOffset Since, TimeSpan BucketSize, int Buckets);

/// <summary>What happened in one time bucket.</summary>
/// <param name="Start">The bucket's start.</param>
/// <param name="Finished">Jobs that finished in it (kept finished jobs only: none when finished jobs are deleted at once).</param>
/// <param name="Failed">Attempts that failed in it (retried or failed for good).</param>
/// <param name="MeanLatency">Of the jobs that finished in it, the mean time from due to start; null when none.</param>
public sealed record JobActivityBucket(DateTimeOffset Start, long Finished, long Failed, TimeSpan? MeanLatency);

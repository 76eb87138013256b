using Keel.Storage;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
    // Each count walks at most @limit rows of an index (the execution tables' keys, the partial finished and
    // discarded indexes), so the overview stays cheap with millions of jobs.
    private const string JobsCountSelect = """
        SELECT (SELECT count(*) FROM (SELECT 1 FROM keel_ready_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_scheduled_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_blocked_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_claimed_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_failed_executions LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_jobs WHERE finished_at IS NOT NULL LIMIT @limit)),
               (SELECT count(*) FROM (SELECT 1 FROM keel_jobs WHERE discarded_at IS NOT NULL AND finished_at IS NULL LIMIT @limit))
        """;

    private const string FinishedActivitySelect = """
        SELECT (finished_at - @since) / @bucket AS bucket, count(*),
               avg(CASE WHEN started_at IS NULL THEN NULL ELSE max(0, started_at - max(created_at, coalesce(scheduled_at, created_at))) END)
        FROM keel_jobs
        WHERE finished_at >= @since AND finished_at < @until
        GROUP BY bucket
        """;

    private const string ErrorsActivitySelect = """
        SELECT (occurred_at - @since) / @bucket AS bucket, count(*)
        FROM keel_job_errors
        WHERE occurred_at >= @since AND occurred_at < @until
        GROUP BY bucket
        """;

    private static readonly JobState[] CountedStates =
        [JobState.Ready, JobState.Scheduled, JobState.Blocked, JobState.Claimed, JobState.Failed, JobState.Finished, JobState.Discarded];

    /// <inheritdoc />
    public async Task<JobCounts> JobsCountAsync(JobsCountParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(parameters.Limit, 1);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, JobsCountSelect);
        select.Parameters.AddWithValue("@limit", parameters.Limit + 1);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        var counts = new Dictionary<JobState, long>();
        for (var i = 0; i < CountedStates.Length; i++)
        {
            counts[CountedStates[i]] = r.GetInt64(i);
        }

        return new JobCounts(counts, parameters.Limit);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobActivityBucket>> JobsActivityAsync(JobsActivityParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(parameters.Buckets, 1);
        var bucket = parameters.BucketSize.Ticks / 10;
        ArgumentOutOfRangeException.ThrowIfLessThan(bucket, 1);
        var since = TimeEncoding.ToMicros(parameters.Since);
        var finished = new long[parameters.Buckets];
        var failed = new long[parameters.Buckets];
        var latency = new double?[parameters.Buckets];
        await using var connection = await OpenAsync(cancellationToken);
        foreach (var sql in new[] { FinishedActivitySelect, ErrorsActivitySelect })
        {
            await using var select = Command(connection, null, sql);
            select.Parameters.AddWithValue("@since", since);
            select.Parameters.AddWithValue("@until", since + (bucket * parameters.Buckets));
            select.Parameters.AddWithValue("@bucket", bucket);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var index = (int)r.GetInt64(0);
                if (ReferenceEquals(sql, FinishedActivitySelect))
                {
                    finished[index] = r.GetInt64(1);
                    latency[index] = r.IsDBNull(2) ? null : r.GetDouble(2);
                }
                else
                {
                    failed[index] = r.GetInt64(1);
                }
            }
        }

        return [.. Enumerable.Range(0, parameters.Buckets).Select(i => new JobActivityBucket(
            parameters.Since + (parameters.BucketSize * i),
            finished[i],
            failed[i],
            latency[i] is { } micros ? TimeSpan.FromTicks((long)(micros * 10)) : null))];
    }
}

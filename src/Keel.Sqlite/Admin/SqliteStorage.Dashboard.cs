using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Dashboard reads: job lists (every state, or one), counts per state, activity per time bucket.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public async Task<JobCounts> JobsCountAsync(JobsCountParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(parameters.Limit, 1);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, AdminSql.JobsCount);
        select.Parameters.AddWithValue("@limit", parameters.Limit + 1);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        var counts = new Dictionary<JobState, long>();
        for (var i = 0; i < JobStates.All.Count; i++)
        {
            counts[JobStates.All[i].State] = r.GetInt64(i);
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
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, AdminSql.JobsActivity);
        select.Parameters.AddWithValue("@since", since);
        select.Parameters.AddWithValue("@until", since + (bucket * parameters.Buckets));
        select.Parameters.AddWithValue("@bucket", bucket);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        return await StorageRows.ReadActivityAsync(r, parameters, static micros => TimeSpan.FromTicks((long)(micros * 10)), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> JobsListAsync(JobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var filter = parameters.Filter ?? new JobFilter();
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, parameters.State is { } state ? AdminSql.JobsListOfState[state] : AdminSql.JobsList);
        select.Parameters.AddWithValue("@before_key", parameters.BeforeId ?? long.MaxValue);
        select.Parameters.AddWithValue("@queue", (object?)filter.Queue ?? DBNull.Value);
        select.Parameters.AddWithValue("@kind", (object?)filter.Kind ?? DBNull.Value);
        select.Parameters.AddWithValue("@exception_type", (object?)filter.ExceptionType ?? DBNull.Value);
        select.Parameters.AddWithValue("@failed_after", filter.FailedAfter is { } fa ? TimeEncoding.ToMicros(fa) : DBNull.Value);
        select.Parameters.AddWithValue("@failed_before", filter.FailedBefore is { } fb ? TimeEncoding.ToMicros(fb) : DBNull.Value);
        select.Parameters.AddWithValue("@created_after", parameters.CreatedAfter is { } ca ? TimeEncoding.ToMicros(ca) : DBNull.Value);
        select.Parameters.AddWithValue("@created_before", parameters.CreatedBefore is { } cb ? TimeEncoding.ToMicros(cb) : DBNull.Value);
        select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        return await ReadSummariesAsync(r, cancellationToken);
    }

    /// <summary>Jobs in the columns of <see cref="JobStates.ListSelect"/>.</summary>
    private static async Task<IReadOnlyList<JobSummary>> ReadSummariesAsync(SqliteDataReader r, CancellationToken cancellationToken)
    {
        var jobs = new List<JobSummary>();
        while (await r.ReadAsync(cancellationToken))
        {
            jobs.Add(new JobSummary(
                r.GetInt64(0), r.GetString(1), r.GetString(2), Enum.Parse<JobState>(r.GetString(3)), r.GetInt32(4), r.GetInt32(5), Time(r, 6),
                NullableTime(r, 7), NullableTime(r, 8), r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetInt64(11),
                r.IsDBNull(12) ? null : r.GetString(12)));
        }

        return jobs;
    }
}

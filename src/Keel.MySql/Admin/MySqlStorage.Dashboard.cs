using Keel.Storage;

namespace Keel.MySql;

/// <summary>Dashboard reads: job lists (every state, or one), counts per state, activity per time bucket.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public Task<JobCounts> JobsCountAsync(JobsCountParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(parameters.Limit, 1);
        return ReadAsync(
            null,
            async session =>
            {
                await using var select = session.Command(AdminSql.JobsCount);
                select.Parameters.AddWithValue("@limit", parameters.Limit + 1);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                var counts = new Dictionary<JobState, long>();
                for (var i = 0; i < JobStates.All.Count; i++)
                {
                    counts[JobStates.All[i].State] = r.GetInt64(i);
                }

                return new JobCounts(counts, parameters.Limit);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<JobActivityBucket>> JobsActivityAsync(JobsActivityParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(parameters.Buckets, 1);
        var bucket = parameters.BucketSize.Ticks / 10;
        ArgumentOutOfRangeException.ThrowIfLessThan(bucket, 1);
        var since = TimeEncoding.ToMicros(parameters.Since);
        return ReadAsync<IReadOnlyList<JobActivityBucket>>(
            null,
            async session =>
            {
                await using var select = session.Command(AdminSql.JobsActivity);
                select.Parameters.AddWithValue("@since", since);
                select.Parameters.AddWithValue("@until", since + (bucket * parameters.Buckets));
                select.Parameters.AddWithValue("@bucket", bucket);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                return await StorageRows.ReadActivityAsync(r, parameters, static micros => TimeSpan.FromTicks((long)(micros * 10)), cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<JobSummary>> JobsListAsync(JobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var filter = parameters.Filter ?? new JobFilter();
        return ReadAsync<IReadOnlyList<JobSummary>>(
            null,
            async session =>
            {
                await using var select = session.Command(parameters.State is { } state ? AdminSql.JobsListOfState[state] : AdminSql.JobsList);
                select.Parameters.AddWithValue("@before_key", parameters.BeforeId ?? long.MaxValue);
                select.Parameters.AddWithValue("@queue", (object?)filter.Queue ?? DBNull.Value);
                select.Parameters.AddWithValue("@kind", (object?)filter.Kind ?? DBNull.Value);
                select.Parameters.AddWithValue("@exception_type", (object?)filter.ExceptionType ?? DBNull.Value);
                select.Parameters.AddWithValue("@failed_after", Micros(filter.FailedAfter));
                select.Parameters.AddWithValue("@failed_before", Micros(filter.FailedBefore));
                select.Parameters.AddWithValue("@created_after", Micros(parameters.CreatedAfter));
                select.Parameters.AddWithValue("@created_before", Micros(parameters.CreatedBefore));
                select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                return await ReadSummariesAsync(r, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken);
    }

    /// <summary>Jobs in the columns of <see cref="JobStates.ListSelect"/>.</summary>
    private static async Task<IReadOnlyList<JobSummary>> ReadSummariesAsync(MySqlConnector.MySqlDataReader r, CancellationToken cancellationToken)
    {
        var jobs = new List<JobSummary>();
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(new JobSummary(
                r.GetInt64(0), r.GetString(1), r.GetString(2), Enum.Parse<JobState>(r.GetString(3)), r.GetInt32(4), r.GetInt32(5), Time(r, 6),
                NullableTime(r, 7), NullableTime(r, 8), NullableString(r, 9), NullableString(r, 10), r.IsDBNull(11) ? null : r.GetInt64(11),
                NullableString(r, 12)));
        }

        return jobs;
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Dashboard reads: job lists (every state, or one), counts per state, activity per time bucket.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<JobCounts> JobsCountAsync(JobsCountParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(parameters.Limit, 1);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(AdminSql.JobsCount, connection);
        command.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = parameters.Limit + 1 });
        await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await r.ReadAsync(cancellationToken).ConfigureAwait(false);
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
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(parameters.BucketSize, TimeSpan.Zero);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(AdminSql.JobsActivity, connection);
        command.Parameters.Add(Time("since", parameters.Since));
        command.Parameters.Add(Time("until", parameters.Since + (parameters.BucketSize * parameters.Buckets)));
        command.Parameters.Add(new NpgsqlParameter("bucket", NpgsqlDbType.Double) { Value = parameters.BucketSize.TotalSeconds });
        await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await StorageRows.ReadActivityAsync(r, parameters, TimeSpan.FromSeconds, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> JobsListAsync(JobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var filter = parameters.Filter ?? new JobFilter();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(parameters.State is { } state ? AdminSql.JobsListOfState[state] : AdminSql.JobsList, connection);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter("before_key", NpgsqlDbType.Bigint) { Value = parameters.BeforeId ?? long.MaxValue });
        p.Add(new NpgsqlParameter("queue", NpgsqlDbType.Text) { Value = (object?)filter.Queue ?? DBNull.Value });
        p.Add(new NpgsqlParameter("kind", NpgsqlDbType.Text) { Value = (object?)filter.Kind ?? DBNull.Value });
        p.Add(new NpgsqlParameter("exception_type", NpgsqlDbType.Text) { Value = (object?)filter.ExceptionType ?? DBNull.Value });
        p.Add(Time("failed_after", filter.FailedAfter));
        p.Add(Time("failed_before", filter.FailedBefore));
        p.Add(Time("created_after", parameters.CreatedAfter));
        p.Add(Time("created_before", parameters.CreatedBefore));
        p.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = Math.Max(1, parameters.Limit) });
        await using var r = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadSummariesAsync(r, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Jobs in the columns of <see cref="JobStates.ListSelect"/>.</summary>
    private static async Task<IReadOnlyList<JobSummary>> ReadSummariesAsync(NpgsqlDataReader r, CancellationToken cancellationToken)
    {
        var jobs = new List<JobSummary>();
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(new JobSummary(
                r.GetInt64(0), r.GetString(1), r.GetString(2), Enum.Parse<JobState>(r.GetString(3)), r.GetInt32(4), r.GetInt32(5),
                r.GetFieldValue<DateTimeOffset>(6),
                r.IsDBNull(7) ? null : r.GetFieldValue<DateTimeOffset>(7),
                r.IsDBNull(8) ? null : r.GetFieldValue<DateTimeOffset>(8),
                r.IsDBNull(9) ? null : r.GetString(9),
                r.IsDBNull(10) ? null : r.GetString(10),
                r.IsDBNull(11) ? null : r.GetInt64(11),
                r.IsDBNull(12) ? null : r.GetString(12)));
        }

        return jobs;
    }
}

using Keel.Storage;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
    private const string JobsListSelect = """
        SELECT id, kind, queue, state, priority, attempts, created_at, scheduled_time, coalesce(finished_at, discarded_at), exception_type, message, process_id
        FROM (
            SELECT j.*, f.exception_type, f.message, f.created_at AS failed_at,
                   (SELECT c.process_id FROM keel_claimed_executions c WHERE c.job_id = j.id) AS process_id,
                   coalesce((SELECT s.scheduled_at FROM keel_scheduled_executions s WHERE s.job_id = j.id), j.scheduled_at) AS scheduled_time,
        """ + JobStateExpression + """
                   AS state
            FROM keel_jobs j LEFT JOIN keel_failed_executions f ON f.job_id = j.id
            WHERE (@before_id IS NULL OR j.id < @before_id)
              AND (@queue IS NULL OR j.queue = @queue)
              AND (@kind IS NULL OR j.kind = @kind)
              AND (@exception_type IS NULL OR f.exception_type = @exception_type)
              AND (@failed_after IS NULL OR f.created_at >= @failed_after)
              AND (@failed_before IS NULL OR f.created_at < @failed_before)
              AND (@created_after IS NULL OR j.created_at >= @created_after)
              AND (@created_before IS NULL OR j.created_at < @created_before)
            ORDER BY j.id DESC) AS j
        WHERE (@state IS NULL OR state = @state)
        ORDER BY id DESC
        LIMIT @limit
        """;

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> JobsListAsync(JobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var filter = parameters.Filter ?? new JobFilter();
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, JobsListSelect);
        select.Parameters.AddWithValue("@state", parameters.State is { } s ? s.ToString() : DBNull.Value);
        select.Parameters.AddWithValue("@before_id", (object?)parameters.BeforeId ?? DBNull.Value);
        select.Parameters.AddWithValue("@queue", (object?)filter.Queue ?? DBNull.Value);
        select.Parameters.AddWithValue("@kind", (object?)filter.Kind ?? DBNull.Value);
        select.Parameters.AddWithValue("@exception_type", (object?)filter.ExceptionType ?? DBNull.Value);
        select.Parameters.AddWithValue("@failed_after", filter.FailedAfter is { } fa ? TimeEncoding.ToMicros(fa) : DBNull.Value);
        select.Parameters.AddWithValue("@failed_before", filter.FailedBefore is { } fb ? TimeEncoding.ToMicros(fb) : DBNull.Value);
        select.Parameters.AddWithValue("@created_after", parameters.CreatedAfter is { } ca ? TimeEncoding.ToMicros(ca) : DBNull.Value);
        select.Parameters.AddWithValue("@created_before", parameters.CreatedBefore is { } cb ? TimeEncoding.ToMicros(cb) : DBNull.Value);
        select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var jobs = new List<JobSummary>();
        while (await r.ReadAsync(cancellationToken))
        {
            jobs.Add(new JobSummary(
                r.GetInt64(0), r.GetString(1), r.GetString(2), Enum.Parse<JobState>(r.GetString(3)), r.GetInt32(4), r.GetInt32(5), Time(r, 6),
                NullableTime(r, 7), NullableTime(r, 8), r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetInt64(11)));
        }

        return jobs;
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

public sealed partial class PostgreSqlStorage
{
    private const string JobsListSelect = """
        SELECT id, kind, queue, state, priority, attempts, created_at, scheduled_time, coalesce(finished_at, discarded_at), exception_type, message, process_id, concurrency_key
        FROM (
            SELECT j.id, j.kind, j.queue, j.priority, j.attempts, j.created_at, j.finished_at, j.discarded_at, f.exception_type, f.message, j.concurrency_key,
                   c.process_id, coalesce(s.scheduled_at, j.scheduled_at) AS scheduled_time,
                   CASE WHEN j.finished_at IS NOT NULL THEN 'Finished'
                        WHEN j.discarded_at IS NOT NULL THEN 'Discarded'
                        WHEN f.job_id IS NOT NULL THEN 'Failed'
                        WHEN c.job_id IS NOT NULL THEN 'Claimed'
                        WHEN r.job_id IS NOT NULL THEN 'Ready'
                        WHEN s.job_id IS NOT NULL THEN 'Scheduled'
                        WHEN b.job_id IS NOT NULL THEN 'Blocked'
                   END AS state
            FROM keel_jobs j
            LEFT JOIN keel_failed_executions f ON f.job_id = j.id
            LEFT JOIN keel_claimed_executions c ON c.job_id = j.id
            LEFT JOIN keel_ready_executions r ON r.job_id = j.id
            LEFT JOIN keel_scheduled_executions s ON s.job_id = j.id
            LEFT JOIN keel_blocked_executions b ON b.job_id = j.id
            WHERE (@before_id::bigint IS NULL OR j.id < @before_id)
              AND (@queue::text IS NULL OR j.queue = @queue)
              AND (@kind::text IS NULL OR j.kind = @kind)
              AND (@exception_type::text IS NULL OR f.exception_type = @exception_type)
              AND (@failed_after::timestamptz IS NULL OR f.created_at >= @failed_after)
              AND (@failed_before::timestamptz IS NULL OR f.created_at < @failed_before)
              AND (@created_after::timestamptz IS NULL OR j.created_at >= @created_after)
              AND (@created_before::timestamptz IS NULL OR j.created_at < @created_before)
        ) AS listed
        WHERE (@state::text IS NULL OR state = @state)
        ORDER BY id DESC
        LIMIT @limit
        """;

    // With a state, the list walks that state's own table (or, for finished and discarded jobs, the jobs table)
    // backwards by job id, so a page costs a short index walk at any table size instead of a state computed per job.
    // The page key is a plain bound (the largest id for the first page), so the plan is the same for every page.
    private const string StateListColumns = """
        SELECT j.id, j.kind, j.queue, @state::text, j.priority, j.attempts, j.created_at, {0}, coalesce(j.finished_at, j.discarded_at), {1}, {2}, {3}, j.concurrency_key
        """;

    private const string StateListFilter = """
          AND (@queue::text IS NULL OR {queue}.queue = @queue)
          AND (@kind::text IS NULL OR j.kind = @kind)
          AND (@created_after::timestamptz IS NULL OR j.created_at >= @created_after)
          AND (@created_before::timestamptz IS NULL OR j.created_at < @created_before)
        """;

    // Error filters match failed jobs only, as in the unfiltered list.
    private const string NotFailedFilter = " AND @exception_type::text IS NULL AND @failed_after::timestamptz IS NULL AND @failed_before::timestamptz IS NULL";

    private const string ListTail = " ORDER BY e.job_id DESC LIMIT @limit";

    private static readonly Dictionary<JobState, string> StateListSelects = new()
    {
        [JobState.Ready] = ExecutionList("keel_ready_executions", "e", "j.scheduled_at", "NULL", "NULL", "NULL::bigint") + NotFailedFilter + ListTail,
        [JobState.Scheduled] = ExecutionList("keel_scheduled_executions", "e", "e.scheduled_at", "NULL", "NULL", "NULL::bigint") + NotFailedFilter + ListTail,
        [JobState.Blocked] = ExecutionList("keel_blocked_executions", "e", "j.scheduled_at", "NULL", "NULL", "NULL::bigint") + NotFailedFilter + ListTail,
        [JobState.Claimed] = ExecutionList("keel_claimed_executions", "j", "j.scheduled_at", "NULL", "NULL", "e.process_id") + NotFailedFilter + ListTail,
        [JobState.Failed] = ExecutionList("keel_failed_executions", "e", "j.scheduled_at", "e.exception_type", "e.message", "NULL::bigint") + """

              AND (@exception_type::text IS NULL OR e.exception_type = @exception_type)
              AND (@failed_after::timestamptz IS NULL OR e.created_at >= @failed_after)
              AND (@failed_before::timestamptz IS NULL OR e.created_at < @failed_before)
            """ + ListTail,
        [JobState.Finished] = string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, "j.scheduled_at", "NULL", "NULL", "NULL::bigint")
            + " FROM keel_jobs j WHERE j.finished_at IS NOT NULL AND j.id < @before_key\n" + Filter("j") + NotFailedFilter + " ORDER BY j.id DESC LIMIT @limit",
        [JobState.Discarded] = string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, "j.scheduled_at", "NULL", "NULL", "NULL::bigint")
            + " FROM keel_jobs j WHERE j.discarded_at IS NOT NULL AND j.finished_at IS NULL AND j.id < @before_key\n" + Filter("j") + NotFailedFilter + " ORDER BY j.id DESC LIMIT @limit",
    };

    // Execution tables that carry the queue (all but claims) are filtered on their own column, not the job's.
    private static string Filter(string queueAlias) => StateListFilter.Replace("{queue}", queueAlias, StringComparison.Ordinal);

    // The bound is repeated on the jobs side so that a merge join walks the jobs key from the page, not from the newest job.
    private static string ExecutionList(string table, string queueAlias, string scheduled, string errorType, string message, string process)
        => string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, scheduled, errorType, message, process)
            + $" FROM {table} e JOIN keel_jobs j ON j.id = e.job_id WHERE e.job_id < @before_key AND j.id < @before_key\n" + Filter(queueAlias);

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> JobsListAsync(JobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var filter = parameters.Filter ?? new JobFilter();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(parameters.State is { } state ? StateListSelects[state] : JobsListSelect, connection);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter("state", NpgsqlDbType.Text) { Value = parameters.State is { } s ? s.ToString() : DBNull.Value });
        p.Add(new NpgsqlParameter("before_id", NpgsqlDbType.Bigint) { Value = (object?)parameters.BeforeId ?? DBNull.Value });
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

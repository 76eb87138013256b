using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
    private const string JobsListSelect = """
        SELECT id, kind, queue, state, priority, attempts, created_at, scheduled_time, coalesce(finished_at, discarded_at), exception_type, message, process_id, concurrency_key
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

    // With a state, the list walks that state's own table (or, for finished and discarded jobs, the jobs table)
    // backwards by job id, so a page costs a short index walk at any table size instead of a state computed per job.
    // The page key is a plain bound (the largest id for the first page): "@before IS NULL OR id < @before" would keep
    // SQLite from seeking, and a page in the middle of a million finished jobs would scan half the table.
    private const string StateListColumns = """
        SELECT j.id, j.kind, j.queue, @state, j.priority, j.attempts, j.created_at, {0}, coalesce(j.finished_at, j.discarded_at), {1}, {2}, {3}, j.concurrency_key
        """;

    private const string StateListFilter = """
          AND (@queue IS NULL OR {queue}.queue = @queue)
          AND (@kind IS NULL OR j.kind = @kind)
          AND (@created_after IS NULL OR j.created_at >= @created_after)
          AND (@created_before IS NULL OR j.created_at < @created_before)
        """;

    // Error filters match failed jobs only, as in the unfiltered list.
    private const string NotFailedFilter = " AND @exception_type IS NULL AND @failed_after IS NULL AND @failed_before IS NULL";

    private static readonly Dictionary<JobState, string> StateListSelects = new()
    {
        [JobState.Ready] = ExecutionList("keel_ready_executions", "e", "j.scheduled_at", "NULL", "NULL", "NULL") + NotFailedFilter + ListTail,
        [JobState.Scheduled] = ExecutionList("keel_scheduled_executions", "e", "e.scheduled_at", "NULL", "NULL", "NULL") + NotFailedFilter + ListTail,
        [JobState.Blocked] = ExecutionList("keel_blocked_executions", "e", "j.scheduled_at", "NULL", "NULL", "NULL") + NotFailedFilter + ListTail,
        [JobState.Claimed] = ExecutionList("keel_claimed_executions", "j", "j.scheduled_at", "NULL", "NULL", "e.process_id") + NotFailedFilter + ListTail,
        [JobState.Failed] = ExecutionList("keel_failed_executions", "e", "j.scheduled_at", "e.exception_type", "e.message", "NULL") + """

              AND (@exception_type IS NULL OR e.exception_type = @exception_type)
              AND (@failed_after IS NULL OR e.created_at >= @failed_after)
              AND (@failed_before IS NULL OR e.created_at < @failed_before)
            """ + ListTail,
        [JobState.Finished] = string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, "j.scheduled_at", "NULL", "NULL", "NULL")
            + " FROM keel_jobs j WHERE j.finished_at IS NOT NULL AND j.id < @before_key\n" + Filter("j") + NotFailedFilter + " ORDER BY j.id DESC LIMIT @limit",
        [JobState.Discarded] = string.Format(System.Globalization.CultureInfo.InvariantCulture, StateListColumns, "j.scheduled_at", "NULL", "NULL", "NULL")
            + " FROM keel_jobs j WHERE j.discarded_at IS NOT NULL AND j.finished_at IS NULL AND j.id < @before_key\n" + Filter("j") + NotFailedFilter + " ORDER BY j.id DESC LIMIT @limit",
    };

    private const string ListTail = " ORDER BY e.job_id DESC LIMIT @limit";

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
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, parameters.State is { } state ? StateListSelects[state] : JobsListSelect);
        select.Parameters.AddWithValue("@state", parameters.State is { } s ? s.ToString() : DBNull.Value);
        select.Parameters.AddWithValue("@before_id", (object?)parameters.BeforeId ?? DBNull.Value);
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

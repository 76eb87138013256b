using System.Data.Common;

namespace Keel.Storage;

/// <summary>Reads a time column the way an engine stores it (a <c>timestamptz</c>, microseconds since the epoch, …).</summary>
/// <param name="reader">The reader, on a row.</param>
/// <param name="ordinal">The column; never null when called.</param>
/// <returns>The time.</returns>
public delegate DateTimeOffset TimeColumn(DbDataReader reader, int ordinal);

/// <summary>
/// The rows every engine reads the same way once its own SQL has selected them in the order the contract's readers
/// expect: a job with its state and current run, its errors, its runs, and the dashboard's activity buckets. An
/// engine passes how it stores times; the rest (column order, nulls, the run in progress or the finishing run) is one
/// piece of code for every engine.
/// </summary>
public static class StorageRows
{
    /// <summary>
    /// A batch read by an engine's batch statements: id, parent batch id, description, total, pending, succeeded,
    /// failed, discarded, created, completed, succeeded at — in that order.
    /// </summary>
    /// <param name="reader">The reader, on the batch's row.</param>
    /// <param name="time">How the engine stores times.</param>
    /// <returns>The batch, without its callbacks.</returns>
    public static BatchInfo ReadBatch(DbDataReader reader, TimeColumn time)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(time);
        return new()
        {
            Id = reader.GetInt64(0),
            ParentBatchId = reader.IsDBNull(1) ? null : reader.GetInt64(1),
            Description = NullableString(reader, 2),
            Total = reader.GetInt64(3),
            Pending = reader.GetInt64(4),
            Succeeded = reader.GetInt64(5),
            Failed = reader.GetInt64(6),
            Discarded = reader.GetInt64(7),
            CreatedAt = time(reader, 8),
            CompletedAt = reader.IsDBNull(9) ? null : time(reader, 9),
            SucceededAt = reader.IsDBNull(10) ? null : time(reader, 10),
        };
    }

    /// <summary>
    /// A job read by an engine's <c>JobGet</c> statement: id, kind, queue, args, priority, attempts, max attempts,
    /// worker losses, created, scheduled, finished, discarded, concurrency key, unique key, state
    /// (<see cref="JobStates.StateOf"/>), claim process, claimed at, claim id, claim attempt, claim runner (JSON),
    /// suspect, started at, finished by (JSON), shared losses, the claim's progress, progress message and cancel reason,
    /// the result (JSON), and optionally batch id — in that order.
    /// </summary>
    /// <param name="reader">The reader, on the job's row.</param>
    /// <param name="time">How the engine stores times.</param>
    /// <returns>The job (without errors and runs) and the run it is in (claimed) or that finished it, if any.</returns>
    public static (JobInfo Job, JobRun? Current) ReadJob(DbDataReader reader, TimeColumn time)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(time);
        var id = reader.GetInt64(0);
        var state = reader.IsDBNull(14) ? throw new InvalidOperationException($"job {id} has no execution row") : Enum.Parse<JobState>(reader.GetString(14));
        var claimed = state == JobState.Claimed;
        var finishedAt = NullableTime(reader, 10, time);
        var job = new JobInfo
        {
            Id = id,
            Kind = reader.GetString(1),
            Queue = reader.GetString(2),
            Args = reader.GetString(3),
            Priority = Convert.ToInt32(reader.GetValue(4), System.Globalization.CultureInfo.InvariantCulture),
            State = state,
            Attempts = Convert.ToInt32(reader.GetValue(5), System.Globalization.CultureInfo.InvariantCulture),
            MaxAttempts = Convert.ToInt32(reader.GetValue(6), System.Globalization.CultureInfo.InvariantCulture),
            WorkerLosses = Convert.ToInt32(reader.GetValue(7), System.Globalization.CultureInfo.InvariantCulture),
            CreatedAt = time(reader, 8),
            ScheduledAt = NullableTime(reader, 9, time),
            FinishedAt = finishedAt,
            DiscardedAt = NullableTime(reader, 11, time),
            ConcurrencyKey = NullableString(reader, 12),
            UniqueKey = NullableString(reader, 13),
            ClaimedByProcessId = claimed ? reader.GetInt64(15) : null,
            ClaimedAt = claimed ? time(reader, 16) : null,
            Suspect = Flag(reader, 20),
            SharedLosses = Convert.ToInt32(reader.GetValue(23), System.Globalization.CultureInfo.InvariantCulture),
            Progress = claimed && !reader.IsDBNull(24) ? Convert.ToDouble(reader.GetValue(24), System.Globalization.CultureInfo.InvariantCulture) : null,
            ProgressMessage = claimed ? NullableString(reader, 25) : null,
            CancelRequested = claimed ? NullableString(reader, 26) : null,
            Result = NullableString(reader, 27),
            BatchId = reader.FieldCount > 28 && !reader.IsDBNull(28) ? Convert.ToInt64(reader.GetValue(28), System.Globalization.CultureInfo.InvariantCulture) : null,
        };
        var current = claimed
            ? new JobRun(Convert.ToInt32(reader.GetValue(18), System.Globalization.CultureInfo.InvariantCulture), JobRun.Running, null, false, Runner.Parse(NullableString(reader, 19)), job.ClaimedAt, null, null, [], reader.GetInt64(17))
            : finishedAt is not null
                ? new JobRun(job.Attempts, JobRun.Finished, null, true, Runner.Parse(NullableString(reader, 22)), NullableTime(reader, 21, time), finishedAt, null, [], null)
                : null;
        return (job, current);
    }

    /// <summary>A log line read by an engine's <c>JobLogs</c> statement: attempt, logged at, level, message.</summary>
    /// <param name="reader">The reader, on the line's row.</param>
    /// <param name="time">How the engine stores times.</param>
    /// <returns>The line.</returns>
    public static JobLogLine ReadLogLine(DbDataReader reader, TimeColumn time)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(time);
        return new JobLogLine(Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), time(reader, 1), reader.GetString(2), reader.GetString(3));
    }

    /// <summary>An error read by an engine's <c>JobErrors</c> statement: attempt, exception type, message, stack trace, when, cause.</summary>
    /// <param name="reader">The reader, on the error's row.</param>
    /// <param name="time">How the engine stores times.</param>
    /// <returns>The error.</returns>
    public static JobError ReadError(DbDataReader reader, TimeColumn time)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(time);
        return new JobError(Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture), reader.GetString(1), reader.GetString(2), NullableString(reader, 3), time(reader, 4), NullableString(reader, 5));
    }

    /// <summary>
    /// A run read by an engine's <c>JobRuns</c> statement: attempt, outcome, cause, charged, runner (JSON), started,
    /// ended, detail, shared with (comma-separated job ids), claim id.
    /// </summary>
    /// <param name="reader">The reader, on the run's row.</param>
    /// <param name="time">How the engine stores times.</param>
    /// <returns>The run.</returns>
    public static JobRun ReadRun(DbDataReader reader, TimeColumn time)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(time);
        return new JobRun(
            Convert.ToInt32(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture),
            reader.GetString(1),
            NullableString(reader, 2),
            Flag(reader, 3),
            Runner.Parse(NullableString(reader, 4)),
            NullableTime(reader, 5, time),
            time(reader, 6),
            NullableString(reader, 7),
            JobRun.ParseIds(NullableString(reader, 8)),
            reader.IsDBNull(9) ? null : reader.GetInt64(9));
    }

    /// <summary>
    /// The dashboard's activity from an engine's <c>JobsActivity</c> statement, whose rows are: kind (<c>f</c> finished,
    /// anything else failed), bucket index, count, mean latency (null when none) in the unit the engine computes it in.
    /// </summary>
    /// <param name="reader">The reader, before its first row.</param>
    /// <param name="parameters">The buckets asked for.</param>
    /// <param name="latency">Turns the engine's mean latency into a duration (seconds, microseconds…).</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>One bucket per <see cref="JobsActivityParams.Buckets"/>, oldest first, empty ones included.</returns>
    public static async Task<IReadOnlyList<JobActivityBucket>> ReadActivityAsync(DbDataReader reader, JobsActivityParams parameters, Func<double, TimeSpan> latency, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(latency);
        var finished = new long[parameters.Buckets];
        var failed = new long[parameters.Buckets];
        var means = new double?[parameters.Buckets];
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var index = Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture);
            if (index < 0 || index >= parameters.Buckets)
            {
                continue;
            }

            var count = Convert.ToInt64(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture);
            if (reader.GetString(0) == "f")
            {
                finished[index] = count;
                means[index] = reader.IsDBNull(3) ? null : Convert.ToDouble(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture);
            }
            else
            {
                failed[index] = count;
            }
        }

        return [.. Enumerable.Range(0, parameters.Buckets).Select(i => new JobActivityBucket(
            parameters.Since + (parameters.BucketSize * i),
            finished[i],
            failed[i],
            means[i] is { } mean ? latency(mean) : null))];
    }

    private static DateTimeOffset? NullableTime(DbDataReader reader, int ordinal, TimeColumn time) => reader.IsDBNull(ordinal) ? null : time(reader, ordinal);

    private static bool Flag(DbDataReader reader, int ordinal) => Convert.ToBoolean(reader.GetValue(ordinal), System.Globalization.CultureInfo.InvariantCulture);

    private static string? NullableString(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);
}

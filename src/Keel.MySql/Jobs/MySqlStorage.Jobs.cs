using System.Globalization;
using System.Text;
using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>Jobs: insert (bulk, or one by one with uniqueness and concurrency keys), get with history, run records.</summary>
public sealed partial class MySqlStorage
{
    /// <summary>Jobs per round trip of a bulk insert (each is four short statements).</summary>
    private const int InsertChunk = 500;

    /// <inheritdoc />
    public async Task<IReadOnlyList<long>> JobsInsertAsync(JobsInsertParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Jobs.Count == 0)
        {
            return [];
        }

        if (parameters.Connection is null)
        {
            return await WriteAsync(parameters.Now, session => InsertJobsAsync(session, parameters.Jobs, cancellationToken, parameters.BatchId), cancellationToken).ConfigureAwait(false);
        }

        if (parameters.Connection is not MySqlConnection connection)
        {
            throw new ArgumentException($"the connection is a {parameters.Connection.GetType().Name}; this Keel store is MySQL, so enqueue on a MySqlConnection to the same database", nameof(parameters));
        }

        if (parameters.Transaction is not null and not MySqlTransaction)
        {
            throw new ArgumentException($"the transaction is a {parameters.Transaction.GetType().Name}, not a MySqlTransaction", nameof(parameters));
        }

        if (parameters.Transaction is MySqlTransaction callers)
        {
            var session = await Session.WithinAsync(connection, callers, parameters.Now, cancellationToken).ConfigureAwait(false);
            return await InsertJobsAsync(session, parameters.Jobs, cancellationToken, parameters.BatchId).ConfigureAwait(false);
        }

        // An autocommit connection: the jobs and their execution rows still go in together.
        await using var own = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
        var ids = await InsertJobsAsync(await Session.WithinAsync(connection, own, parameters.Now, cancellationToken).ConfigureAwait(false), parameters.Jobs, cancellationToken, parameters.BatchId).ConfigureAwait(false);
        await own.CommitAsync(cancellationToken).ConfigureAwait(false);
        return ids;
    }

    private static async Task<IReadOnlyList<long>> InsertJobsAsync(Session session, IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken, long? batchId = null)
    {
        if (batchId is { } batch && jobs.Count > 0)
        {
            // Counted pending before any job is inserted, so the batch cannot complete halfway through.
            WorkflowSteps.CheckBatchJobs(jobs);
            await AddToBatchAsync(session, batch, jobs.Count, cancellationToken).ConfigureAwait(false);
        }

        if (jobs.All(j => j.UniqueKey is null && j.ConcurrencyKey is null && j.Dependencies is null or { Count: 0 }))
        {
            return await InsertPlainAsync(session, jobs, cancellationToken, batchId).ConfigureAwait(false);
        }

        var ids = new long[jobs.Count];
        List<SettledJob>? discarded = null;
        for (var i = 0; i < ids.Length; i++)
        {
            var (id, route) = await InsertKeyedAsync(session, jobs[i], new ArraySegment<long>(ids, 0, i), batchId, cancellationToken).ConfigureAwait(false);
            ids[i] = id;
            if (route == Route.Discarded && batchId is not null)
            {
                (discarded ??= []).Add(new SettledJob(id, ContinueWhen.Discarded, false, batchId));
            }
        }

        if (discarded is not null)
        {
            await SettleAsync(session, discarded, cancellationToken).ConfigureAwait(false);
        }

        return ids;
    }

    /// <summary>Jobs without keys: a round trip per <see cref="InsertChunk"/> jobs.</summary>
    private static async Task<IReadOnlyList<long>> InsertPlainAsync(Session session, IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken, long? batchId)
    {
        var ids = new List<long>(jobs.Count);
        for (var start = 0; start < jobs.Count; start += InsertChunk)
        {
            var count = Math.Min(InsertChunk, jobs.Count - start);
            var text = new StringBuilder();
            for (var i = 0; i < count; i++)
            {
                text.Append(JobsSql.JobsInsert(i));
            }

            await using var insert = session.Command(text.ToString());
            insert.Parameters.AddWithValue("@batch_id", (object?)batchId ?? DBNull.Value);
            for (var i = 0; i < count; i++)
            {
                var job = jobs[start + i];
                var suffix = i.ToString(CultureInfo.InvariantCulture);
                var p = insert.Parameters;
                p.AddWithValue("@queue" + suffix, job.Queue);
                p.AddWithValue("@kind" + suffix, job.Kind);
                p.AddWithValue("@args" + suffix, job.Args);
                p.AddWithValue("@priority" + suffix, job.Priority);
                p.AddWithValue("@scheduled_at" + suffix, Micros(job.ScheduledAt));
                p.AddWithValue("@max_attempts" + suffix, job.MaxAttempts);
                p.AddWithValue("@max_worker_losses" + suffix, job.MaxWorkerLosses);
                p.AddWithValue("@trace_parent" + suffix, (object?)job.TraceParent ?? DBNull.Value);
            }

            await using var reader = await insert.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            do
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    ids.Add(Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture));
                }
            }
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
        }

        return ids;
    }

    /// <summary>
    /// One job with a uniqueness or concurrency key or parents, step by step: the key's owner, the job, its key, its
    /// parents, where it goes. Returns its id and where it went (null: an existing owner of its key, or awaiting).
    /// </summary>
    private static async Task<(long Id, Route? Route)> InsertKeyedAsync(Session session, NewJob job, IReadOnlyList<long> earlier, long? batchId, CancellationToken cancellationToken)
    {
        if (job.UniqueKey is not null)
        {
            if (await UniqueOwnerAsync(session, job.UniqueKey, cancellationToken).ConfigureAwait(false) is { } owner)
            {
                return (owner, null); // A live job (or an earlier one of this call) holds the key: no second job.
            }

            await session.ExecuteAsync(ConnectionSql.JobSavepoint, cancellationToken).ConfigureAwait(false);
        }

        long id;
        await using (var insert = session.Command(JobsSql.JobInsert))
        {
            var p = insert.Parameters;
            p.AddWithValue("@queue", job.Queue);
            p.AddWithValue("@kind", job.Kind);
            p.AddWithValue("@args", job.Args);
            p.AddWithValue("@priority", job.Priority);
            p.AddWithValue("@scheduled_at", Micros(job.ScheduledAt));
            p.AddWithValue("@max_attempts", job.MaxAttempts);
            p.AddWithValue("@max_worker_losses", job.MaxWorkerLosses);
            p.AddWithValue("@unique_key", (object?)job.UniqueKey ?? DBNull.Value);
            p.AddWithValue("@concurrency_key", (object?)job.ConcurrencyKey ?? DBNull.Value);
            p.AddWithValue("@concurrency_limit", job.ConcurrencyKey is null ? DBNull.Value : job.ConcurrencyLimit);
            p.AddWithValue("@concurrency_duration_ms", job.ConcurrencyKey is null ? DBNull.Value : (long)job.ConcurrencyDuration.TotalMilliseconds);
            p.AddWithValue("@trace_parent", (object?)job.TraceParent ?? DBNull.Value);
            p.AddWithValue("@batch_id", (object?)batchId ?? DBNull.Value);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            id = insert.LastInsertedId;
        }

        if (job.UniqueKey is not null)
        {
            await using var take = session.Command(JobsSql.UniqueKeyTake);
            take.Parameters.AddWithValue("@key", job.UniqueKey);
            take.Parameters.AddWithValue("@job_id", id);
            if (await take.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                // Another transaction took the key after the look above and has committed: its job is the one.
                await session.ExecuteAsync(ConnectionSql.JobSavepointRollback, cancellationToken).ConfigureAwait(false);
                return (await UniqueOwnerAsync(session, job.UniqueKey, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException($"uniqueness key {job.UniqueKey} was taken and released while job {id} was inserted"), null);
            }
        }

        if (job.Dependencies is { Count: > 0 } dependencies)
        {
            var waiting = await new MySqlWorkflow(session).AttachParentsAsync(id, dependencies, earlier, cancellationToken).ConfigureAwait(false);
            if (waiting is null)
            {
                // A parent already settled in an outcome this job does not wait for, and its policy discards it.
                await ExecuteForJobAsync(session, JobsSql.JobDiscard, id, cancellationToken).ConfigureAwait(false);
                await ExecuteForJobAsync(session, JobsSql.UniqueKeyFree, id, cancellationToken).ConfigureAwait(false);
                return (id, Route.Discarded);
            }

            if (waiting > 0)
            {
                await using var awaiting = session.Command(WorkflowsSql.AwaitingInsert);
                awaiting.Parameters.AddWithValue("@job_id", id);
                awaiting.Parameters.AddWithValue("@queue", job.Queue);
                awaiting.Parameters.AddWithValue("@priority", job.Priority);
                awaiting.Parameters.AddWithValue("@waiting", waiting.Value);
                await awaiting.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return (id, null);
            }
        }

        var now = await session.NowAsync(cancellationToken).ConfigureAwait(false);
        if (job.ScheduledAt is { } at && TimeEncoding.ToMicros(at) > now)
        {
            await using var scheduled = session.Command(ScheduledSql.ScheduledInsert);
            scheduled.Parameters.AddWithValue("@job_id", id);
            scheduled.Parameters.AddWithValue("@queue", job.Queue);
            scheduled.Parameters.AddWithValue("@priority", job.Priority);
            scheduled.Parameters.AddWithValue("@scheduled_at", TimeEncoding.ToMicros(at));
            await scheduled.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return (id, null);
        }

        var routing = new JobRouting(id, job.Queue, job.Priority, job.ConcurrencyKey, job.ConcurrencyLimit, (long)(job.ConcurrencyDuration.TotalMilliseconds * 1000));
        return (id, await MakeDueAsync(session, routing, job.DiscardOnConflict, cancellationToken).ConfigureAwait(false));
    }

    private static async Task<long?> UniqueOwnerAsync(Session session, string key, CancellationToken cancellationToken)
    {
        await using var select = session.Command(JobsSql.UniqueKeyOwner);
        select.Parameters.AddWithValue("@key", key);
        return await select.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is { } owner and not DBNull
            ? Convert.ToInt64(owner, CultureInfo.InvariantCulture)
            : null;
    }

    /// <inheritdoc />
    public async Task<JobInfo?> JobGetAsync(long jobId, CancellationToken cancellationToken)
    {
        // Three reads on one connection: a job's history only grows, so one written in between shows at worst one more
        // entry than the state read first.
        return await ReadAsync(null, session => ReadJobAsync(session, jobId, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private static async Task<JobInfo?> ReadJobAsync(Session session, long jobId, CancellationToken cancellationToken)
    {
        JobInfo job;
        JobRun? current;
        await using (var select = session.Command(JobsSql.JobGet))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            (job, current) = StorageRows.ReadJob(r, Time);
        }

        var errors = new List<JobError>();
        await using (var select = session.Command(JobsSql.JobErrors))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                errors.Add(StorageRows.ReadError(r, Time));
            }
        }

        var runs = new List<JobRun>();
        await using (var select = session.Command(JobsSql.JobRuns))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                runs.Add(StorageRows.ReadRun(r, Time));
            }
        }

        var logs = new List<JobLogLine>();
        await using (var select = session.Command(JobsSql.JobLogs))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                logs.Add(StorageRows.ReadLogLine(r, Time));
            }
        }

        if (current is not null)
        {
            runs.Add(current);
        }

        var edges = new List<JobDependencyInfo>[2];
        foreach (var (sql, index) in new[] { (WorkflowsSql.ParentsOf, 0), (WorkflowsSql.ChildrenOf, 1) })
        {
            edges[index] = [];
            await using var select = session.Command(sql);
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                edges[index].Add(WorkflowSteps.ReadDependency(r));
            }
        }

        return job with { Errors = errors, Runs = runs, Parents = edges[0], Children = edges[1], Logs = logs };
    }

    /// <inheritdoc />
    public Task RunRecordAsync(RunRecordParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            parameters.Now,
            async session =>
            {
                long? started = parameters.StartedAt is { } s ? TimeEncoding.ToMicros(s) : null;
                var e = parameters.Ending;
                await InsertRunAsync(session, new RunRow(parameters.Claim.JobId, parameters.Claim.Attempt, parameters.Claim.ClaimId == 0 ? null : parameters.Claim.ClaimId, parameters.Runner, started, e.Outcome, e.Cause, false, e.Detail, null), cancellationToken).ConfigureAwait(false);
                return 0;
            },
            cancellationToken);
    }

    /// <summary>A run that did not finish its job, as <c>keel_job_runs</c> stores it.</summary>
    private sealed record RunRow(long JobId, long Attempt, long? ClaimId, string? Runner, long? StartedAt, string Outcome, string? Cause, bool Charged, string? Detail, string? SharedWith);

    private static async Task InsertRunAsync(Session session, RunRow run, CancellationToken cancellationToken)
    {
        await using var command = session.Command(JobsSql.RunRecord);
        command.Parameters.AddWithValue("@job_id", run.JobId);
        command.Parameters.AddWithValue("@attempt", run.Attempt);
        command.Parameters.AddWithValue("@claim_id", (object?)run.ClaimId ?? DBNull.Value);
        command.Parameters.AddWithValue("@runner", (object?)run.Runner ?? DBNull.Value);
        command.Parameters.AddWithValue("@started_at", (object?)run.StartedAt ?? DBNull.Value);
        command.Parameters.AddWithValue("@outcome", run.Outcome);
        command.Parameters.AddWithValue("@cause", (object?)run.Cause ?? DBNull.Value);
        command.Parameters.AddWithValue("@charged", run.Charged);
        command.Parameters.AddWithValue("@detail", (object?)run.Detail ?? DBNull.Value);
        command.Parameters.AddWithValue("@shared_with", (object?)run.SharedWith ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task InsertErrorAsync(Session session, long jobId, long attempt, FailureRecord failure, string? cause, CancellationToken cancellationToken)
    {
        await using var command = session.Command(JobsSql.JobErrorInsert);
        AddFailure(command, jobId, attempt, failure, cause);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void AddFailure(MySqlCommand command, long jobId, long attempt, FailureRecord failure, string? cause)
    {
        command.Parameters.AddWithValue("@job_id", jobId);
        command.Parameters.AddWithValue("@attempt", attempt);
        command.Parameters.AddWithValue("@exception_type", failure.ExceptionType);
        command.Parameters.AddWithValue("@message", failure.Message);
        command.Parameters.AddWithValue("@stack_trace", (object?)failure.StackTrace ?? DBNull.Value);
        command.Parameters.AddWithValue("@cause", (object?)cause ?? DBNull.Value);
    }
}

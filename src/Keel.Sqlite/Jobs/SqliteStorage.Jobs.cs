using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
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
            return await WriteAsync((c, t) => InsertJobsAsync(c, t, parameters, Micros(parameters.Now), cancellationToken), cancellationToken);
        }

        if (parameters.Connection is not SqliteConnection connection)
        {
            throw new ArgumentException($"the connection is a {parameters.Connection.GetType().Name}; this Keel store is SQLite, so enqueue on a SqliteConnection to the same database file", nameof(parameters));
        }

        if (parameters.Transaction is not null and not SqliteTransaction)
        {
            throw new ArgumentException($"the transaction is a {parameters.Transaction.GetType().Name}, not a SqliteTransaction", nameof(parameters));
        }

        if (parameters.Transaction is SqliteTransaction callers)
        {
            return await InsertJobsAsync(connection, callers, parameters, Micros(parameters.Now), cancellationToken);
        }

        // An autocommit connection: the jobs and their execution rows still go in together.
        await using var own = connection.BeginTransaction(deferred: false);
        var ids = await InsertJobsAsync(connection, own, parameters, Micros(parameters.Now), cancellationToken);
        await own.CommitAsync(cancellationToken);
        return ids;
    }

    private static async Task<IReadOnlyList<long>> InsertJobsAsync(SqliteConnection connection, SqliteTransaction transaction, JobsInsertParams parameters, long now, CancellationToken cancellationToken)
    {
        if (parameters.BatchId is { } batch)
        {
            // Counted pending before any job is inserted, so the batch cannot complete halfway through.
            WorkflowSteps.CheckBatchJobs(parameters.Jobs);
            await AddToBatchAsync(connection, transaction, batch, parameters.Jobs.Count, cancellationToken);
        }

        SqliteWorkflow? workflow = null;
        List<SettledJob>? discardedAtInsert = null;
        await using var insertJob = Command(connection, transaction, JobsSql.JobInsert);
        var queue = insertJob.Parameters.Add("@queue", SqliteType.Text);
        var kind = insertJob.Parameters.Add("@kind", SqliteType.Text);
        var args = insertJob.Parameters.Add("@args", SqliteType.Text);
        var priority = insertJob.Parameters.Add("@priority", SqliteType.Integer);
        var scheduledAt = insertJob.Parameters.Add("@scheduled_at", SqliteType.Integer);
        var maxAttempts = insertJob.Parameters.Add("@max_attempts", SqliteType.Integer);
        var maxWorkerLosses = insertJob.Parameters.Add("@max_worker_losses", SqliteType.Integer);
        var uniqueKey = insertJob.Parameters.Add("@unique_key", SqliteType.Text);
        var concurrencyKey = insertJob.Parameters.Add("@concurrency_key", SqliteType.Text);
        var concurrencyLimit = insertJob.Parameters.Add("@concurrency_limit", SqliteType.Integer);
        var concurrencyDuration = insertJob.Parameters.Add("@concurrency_duration_ms", SqliteType.Integer);
        var traceParent = insertJob.Parameters.Add("@trace_parent", SqliteType.Text);
        insertJob.Parameters.AddWithValue("@batch_id", (object?)parameters.BatchId ?? DBNull.Value);
        insertJob.Parameters.AddWithValue("@now", now);

        await using var insertScheduled = Command(connection, transaction, ScheduledSql.ScheduledInsert);
        var scheduledJob = insertScheduled.Parameters.Add("@job_id", SqliteType.Integer);
        var scheduledQueue = insertScheduled.Parameters.Add("@queue", SqliteType.Text);
        var scheduledPriority = insertScheduled.Parameters.Add("@priority", SqliteType.Integer);
        var scheduledTime = insertScheduled.Parameters.Add("@scheduled_at", SqliteType.Integer);
        insertScheduled.Parameters.AddWithValue("@now", now);

        var ids = new long[parameters.Jobs.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            var job = parameters.Jobs[i];
            if (job.UniqueKey is not null && await UniqueOwnerAsync(connection, transaction, job.UniqueKey, cancellationToken) is { } owner)
            {
                ids[i] = owner; // A live job (or an earlier one of this call) holds the key: no second job.
                continue;
            }

            long? at = job.ScheduledAt is { } s ? TimeEncoding.ToMicros(s) : null;
            queue.Value = job.Queue;
            kind.Value = job.Kind;
            args.Value = job.Args;
            priority.Value = job.Priority;
            scheduledAt.Value = (object?)at ?? DBNull.Value;
            maxAttempts.Value = job.MaxAttempts;
            maxWorkerLosses.Value = job.MaxWorkerLosses;
            uniqueKey.Value = (object?)job.UniqueKey ?? DBNull.Value;
            concurrencyKey.Value = (object?)job.ConcurrencyKey ?? DBNull.Value;
            concurrencyLimit.Value = job.ConcurrencyKey is null ? DBNull.Value : job.ConcurrencyLimit;
            concurrencyDuration.Value = job.ConcurrencyKey is null ? DBNull.Value : (long)job.ConcurrencyDuration.TotalMilliseconds;
            traceParent.Value = (object?)job.TraceParent ?? DBNull.Value;
            var id = Convert.ToInt64(await insertJob.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
            ids[i] = id;
            if (job.UniqueKey is not null)
            {
                await using var take = Command(connection, transaction, JobsSql.UniqueKeyTake);
                take.Parameters.AddWithValue("@key", job.UniqueKey);
                take.Parameters.AddWithValue("@job_id", id);
                await take.ExecuteNonQueryAsync(cancellationToken);
            }

            if (job.Dependencies is { Count: > 0 } dependencies)
            {
                workflow ??= new SqliteWorkflow(connection, transaction, now);
                var waiting = await workflow.AttachParentsAsync(id, dependencies, new ArraySegment<long>(ids, 0, i), cancellationToken);
                if (waiting is null)
                {
                    // A parent already settled in an outcome this job does not wait for, and its policy discards it.
                    await ExecuteForJobAsync(connection, transaction, JobsSql.JobDiscard, id, now, cancellationToken);
                    await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, id, now, cancellationToken);
                    (discardedAtInsert ??= []).Add(new SettledJob(id, ContinueWhen.Discarded, false, parameters.BatchId));
                    continue;
                }

                if (waiting > 0)
                {
                    await using var awaiting = Command(connection, transaction, WorkflowsSql.AwaitingInsert);
                    awaiting.Parameters.AddWithValue("@job_id", id);
                    awaiting.Parameters.AddWithValue("@queue", job.Queue);
                    awaiting.Parameters.AddWithValue("@priority", job.Priority);
                    awaiting.Parameters.AddWithValue("@waiting", waiting.Value);
                    awaiting.Parameters.AddWithValue("@now", now);
                    await awaiting.ExecuteNonQueryAsync(cancellationToken);
                    continue;
                }
            }

            if (at is { } due && due > now)
            {
                scheduledJob.Value = id;
                scheduledQueue.Value = job.Queue;
                scheduledPriority.Value = job.Priority;
                scheduledTime.Value = due;
                await insertScheduled.ExecuteNonQueryAsync(cancellationToken);
            }
            else
            {
                var routing = new JobRouting(id, job.Queue, job.Priority, job.ConcurrencyKey, job.ConcurrencyLimit, (long)(job.ConcurrencyDuration.TotalMilliseconds * 1000));
                if (await MakeDueAsync(connection, transaction, routing, job.DiscardOnConflict, now, cancellationToken) == Route.Discarded && parameters.BatchId is not null)
                {
                    (discardedAtInsert ??= []).Add(new SettledJob(id, ContinueWhen.Discarded, false, parameters.BatchId));
                }
            }
        }

        if (discardedAtInsert is not null)
        {
            await SettleAsync(connection, transaction, discardedAtInsert, now, cancellationToken);
        }

        return ids;
    }

    private static async Task<long?> UniqueOwnerAsync(SqliteConnection connection, SqliteTransaction transaction, string key, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, JobsSql.UniqueKeyOwner);
        select.Parameters.AddWithValue("@key", key);
        return await select.ExecuteScalarAsync(cancellationToken) is long owner ? owner : null;
    }

    /// <inheritdoc />
    public async Task<JobInfo?> JobGetAsync(long jobId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        // One read transaction so the job row and its error history are a consistent snapshot.
        await using var transaction = connection.BeginTransaction(deferred: true);
        JobInfo job;
        JobRun? current;
        await using (var select = Command(connection, transaction, JobsSql.JobGet))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken))
            {
                return null;
            }

            (job, current) = StorageRows.ReadJob(r, Time);
        }

        var errors = new List<JobError>();
        await using (var select = Command(connection, transaction, JobsSql.JobErrors))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                errors.Add(StorageRows.ReadError(r, Time));
            }
        }

        var runs = new List<JobRun>();
        await using (var select = Command(connection, transaction, JobsSql.JobRuns))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                runs.Add(StorageRows.ReadRun(r, Time));
            }
        }

        var logs = new List<JobLogLine>();
        await using (var select = Command(connection, transaction, JobsSql.JobLogs))
        {
            select.Parameters.AddWithValue("@job_id", jobId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                logs.Add(StorageRows.ReadLogLine(r, Time));
            }
        }

        if (current is not null)
        {
            runs.Add(current);
        }

        var parents = await DependenciesAsync(connection, transaction, WorkflowsSql.ParentsOf, jobId, cancellationToken);
        var children = await DependenciesAsync(connection, transaction, WorkflowsSql.ChildrenOf, jobId, cancellationToken);
        return job with { Errors = errors, Runs = runs, Logs = logs, Parents = parents, Children = children };
    }

    private static async Task<IReadOnlyList<JobDependencyInfo>> DependenciesAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, long jobId, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, sql);
        select.Parameters.AddWithValue("@job_id", jobId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var edges = new List<JobDependencyInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            edges.Add(WorkflowSteps.ReadDependency(r));
        }

        return edges;
    }

    /// <inheritdoc />
    public Task RunRecordAsync(RunRecordParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                long? started = parameters.StartedAt is { } s ? TimeEncoding.ToMicros(s) : null;
                var e = parameters.Ending;
                await InsertRunAsync(connection, transaction, new RunRow(parameters.Claim.JobId, parameters.Claim.Attempt, parameters.Claim.ClaimId == 0 ? null : parameters.Claim.ClaimId, parameters.Runner, started, e.Outcome, e.Cause, false, e.Detail, null), Micros(parameters.Now), cancellationToken);
                return 0;
            },
            cancellationToken);
    }

    /// <summary>A run that did not finish its job, as <c>keel_job_runs</c> stores it.</summary>
    private sealed record RunRow(long JobId, long Attempt, long? ClaimId, string? Runner, long? StartedAt, string Outcome, string? Cause, bool Charged, string? Detail, string? SharedWith);

    private static async Task InsertRunAsync(SqliteConnection connection, SqliteTransaction transaction, RunRow run, long now, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, JobsSql.RunRecord);
        command.Parameters.AddWithValue("@job_id", run.JobId);
        command.Parameters.AddWithValue("@attempt", run.Attempt);
        command.Parameters.AddWithValue("@claim_id", (object?)run.ClaimId ?? DBNull.Value);
        command.Parameters.AddWithValue("@runner", (object?)run.Runner ?? DBNull.Value);
        command.Parameters.AddWithValue("@started_at", (object?)run.StartedAt ?? DBNull.Value);
        command.Parameters.AddWithValue("@now", now);
        command.Parameters.AddWithValue("@outcome", run.Outcome);
        command.Parameters.AddWithValue("@cause", (object?)run.Cause ?? DBNull.Value);
        command.Parameters.AddWithValue("@charged", run.Charged);
        command.Parameters.AddWithValue("@detail", (object?)run.Detail ?? DBNull.Value);
        command.Parameters.AddWithValue("@shared_with", (object?)run.SharedWith ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task InsertErrorAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, long attempt, FailureRecord failure, string? cause, long now, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, JobsSql.JobErrorInsert);
        AddFailure(command, jobId, attempt, failure, cause, now);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void AddFailure(SqliteCommand command, long jobId, long attempt, FailureRecord failure, string? cause, long now)
    {
        command.Parameters.AddWithValue("@job_id", jobId);
        command.Parameters.AddWithValue("@attempt", attempt);
        command.Parameters.AddWithValue("@exception_type", failure.ExceptionType);
        command.Parameters.AddWithValue("@message", failure.Message);
        command.Parameters.AddWithValue("@stack_trace", (object?)failure.StackTrace ?? DBNull.Value);
        command.Parameters.AddWithValue("@cause", (object?)cause ?? DBNull.Value);
        command.Parameters.AddWithValue("@now", now);
    }
}

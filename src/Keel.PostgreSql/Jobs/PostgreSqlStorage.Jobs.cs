using System.Data.Common;
using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Jobs: inserts (in one round trip, or one by one when a job has a concurrency or uniqueness key), reads with their history.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <summary>How many times an insert re-resolves a uniqueness key whose holder keeps changing under it.</summary>
    private const int UniqueResolveAttempts = 10;

    /// <inheritdoc />
    public async Task<IReadOnlyList<long>> JobsInsertAsync(JobsInsertParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var jobs = parameters.Jobs;
        ArgumentNullException.ThrowIfNull(jobs);
        if (jobs.Count == 0)
        {
            return [];
        }

        var (callerConnection, callerTransaction) = CallerConnection(parameters.Connection, parameters.Transaction);
        if (parameters.BatchId is not null || UsesDependencies(jobs))
        {
            return await InTransactionAsync(
                callerConnection,
                callerTransaction,
                (connection, transaction) => InsertWorkflowJobsAsync(connection, transaction, jobs, parameters.BatchId, parameters.Now, cancellationToken),
                cancellationToken).ConfigureAwait(false);
        }

        if (UsesKeys(jobs))
        {
            return await JobsInsertKeyedAsync(jobs, parameters.Now, callerConnection, callerTransaction, cancellationToken).ConfigureAwait(false);
        }

        if (callerConnection is null && jobs.Count == 1 && FitsHandOff(jobs[0]))
        {
            // One job on its own connection: an idle worker's offer may take it (not in a caller's transaction, which
            // would hold the offer's lock, and the worker's, for as long as it stays open).
            return [await JobInsertHandingOffAsync(jobs[0], parameters.Now, cancellationToken).ConfigureAwait(false)];
        }

        NpgsqlConnection? owned = null;
        try
        {
            var connection = callerConnection ?? (owned = await OpenAsync(cancellationToken).ConfigureAwait(false));
            await using var command = new NpgsqlCommand(JobsSql.JobsInsert, connection, callerTransaction);
            AddBulkJobParameters(command.Parameters, jobs, 0, jobs.Count, null, parameters.Now);

            var ids = new List<long>(jobs.Count);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ids.Add(reader.GetInt64(0));
            }

            return ids;
        }
        finally
        {
            if (owned is not null)
            {
                await owned.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static bool UsesKeys(IReadOnlyList<NewJob> jobs)
    {
        for (var i = 0; i < jobs.Count; i++)
        {
            if (jobs[i].ConcurrencyKey is not null || jobs[i].UniqueKey is not null)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The insert path for calls where some job uses a concurrency or uniqueness key: one transaction (the caller's,
    /// when given), the jobs in input order, so a duplicate key later in the call sees the earlier job.
    /// </summary>
    private async Task<IReadOnlyList<long>> JobsInsertKeyedAsync(
        IReadOnlyList<NewJob> jobs,
        DateTimeOffset? now,
        NpgsqlConnection? callerConnection,
        NpgsqlTransaction? callerTransaction,
        CancellationToken cancellationToken)
    {
        foreach (var job in jobs)
        {
            ArgumentNullException.ThrowIfNull(job, nameof(jobs));
            if (job.ConcurrencyKey is not null)
            {
                if (job.ConcurrencyLimit < 1)
                {
                    throw new ArgumentOutOfRangeException(nameof(jobs), job.ConcurrencyLimit, $"job kind '{job.Kind}' has concurrency key '{job.ConcurrencyKey}' with limit {job.ConcurrencyLimit}; a limit must be at least 1");
                }

                if (job.ConcurrencyDuration <= TimeSpan.Zero)
                {
                    throw new ArgumentOutOfRangeException(nameof(jobs), job.ConcurrencyDuration, $"job kind '{job.Kind}' has concurrency key '{job.ConcurrencyKey}' with duration {job.ConcurrencyDuration}; a duration must be positive");
                }
            }
        }

        NpgsqlConnection? owned = null;
        NpgsqlTransaction? ownTransaction = null;
        try
        {
            var connection = callerConnection ?? (owned = await OpenAsync(cancellationToken).ConfigureAwait(false));
            var transaction = callerTransaction ?? (ownTransaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false));
            var ids = new long[jobs.Count];
            for (var i = 0; i < jobs.Count; i++)
            {
                ids[i] = await InsertOneAsync(connection, transaction, jobs[i], now, cancellationToken).ConfigureAwait(false);
            }

            if (ownTransaction is not null)
            {
                await ownTransaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            return ids;
        }
        finally
        {
            if (ownTransaction is not null)
            {
                await ownTransaction.DisposeAsync().ConfigureAwait(false);
            }

            if (owned is not null)
            {
                await owned.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The array parameters of <c>JobsInsert</c> for <paramref name="count"/> jobs from <paramref name="start"/>.</summary>
    private static void AddBulkJobParameters(NpgsqlParameterCollection p, IReadOnlyList<NewJob> jobs, int start, int count, long? batchId, DateTimeOffset? now)
    {
        var queues = new string[count];
        var kinds = new string[count];
        var args = new string[count];
        var priorities = new int[count];
        var scheduledAts = new DateTimeOffset?[count];
        var maxAttempts = new int[count];
        var maxWorkerLosses = new int[count];
        var traceParents = new string?[count];
        for (var k = 0; k < count; k++)
        {
            var job = jobs[start + k];
            queues[k] = job.Queue;
            kinds[k] = job.Kind;
            args[k] = job.Args;
            priorities[k] = job.Priority;
            scheduledAts[k] = job.ScheduledAt?.ToUniversalTime();
            maxAttempts[k] = job.MaxAttempts;
            maxWorkerLosses[k] = job.MaxWorkerLosses;
            traceParents[k] = job.TraceParent;
        }

        p.Add(new NpgsqlParameter<string[]>("queues", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = queues });
        p.Add(new NpgsqlParameter<string[]>("kinds", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = kinds });
        p.Add(new NpgsqlParameter<string[]>("args", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = args });
        p.Add(new NpgsqlParameter<int[]>("priorities", NpgsqlDbType.Array | NpgsqlDbType.Integer) { TypedValue = priorities });
        p.Add(new NpgsqlParameter<DateTimeOffset?[]>("scheduled_ats", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { TypedValue = scheduledAts });
        p.Add(new NpgsqlParameter<int[]>("max_attempts", NpgsqlDbType.Array | NpgsqlDbType.Integer) { TypedValue = maxAttempts });
        p.Add(new NpgsqlParameter<int[]>("max_worker_losses", NpgsqlDbType.Array | NpgsqlDbType.Integer) { TypedValue = maxWorkerLosses });
        p.Add(new NpgsqlParameter<string?[]>("trace_parents", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = traceParents });
        p.Add(new NpgsqlParameter("batch_id", NpgsqlDbType.Bigint) { Value = (object?)batchId ?? DBNull.Value });
        p.Add(Now(now));
    }

    /// <summary>The parameters every one-job insert has: queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses.</summary>
    private static void AddPlainJobParameters(NpgsqlParameterCollection p, NewJob job)
    {
        p.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = job.Queue });
        p.Add(new NpgsqlParameter<string>("kind", NpgsqlDbType.Text) { TypedValue = job.Kind });
        p.Add(new NpgsqlParameter<string>("args", NpgsqlDbType.Text) { TypedValue = job.Args });
        p.Add(new NpgsqlParameter<int>("priority", NpgsqlDbType.Integer) { TypedValue = job.Priority });
        p.Add(Time("scheduled_at", job.ScheduledAt));
        p.Add(new NpgsqlParameter<int>("max_attempts", NpgsqlDbType.Integer) { TypedValue = job.MaxAttempts });
        p.Add(new NpgsqlParameter<int>("max_worker_losses", NpgsqlDbType.Integer) { TypedValue = job.MaxWorkerLosses });
    }

    /// <summary>The parameters of a one-job insert (<c>JobInsertOne</c>, or <c>JobInsertBare</c> without the uniqueness key).</summary>
    private static void AddNewJobParameters(NpgsqlParameterCollection p, NewJob job, long? batchId, DateTimeOffset? now, bool uniqueKey)
    {
        var limited = job.ConcurrencyKey is not null;
        AddPlainJobParameters(p, job);
        p.Add(Text("concurrency_key", job.ConcurrencyKey));
        p.Add(new NpgsqlParameter("concurrency_limit", NpgsqlDbType.Integer) { Value = limited ? job.ConcurrencyLimit : DBNull.Value });
        p.Add(new NpgsqlParameter("concurrency_duration_ms", NpgsqlDbType.Bigint)
        {
            Value = limited ? Math.Max(1L, (long)Math.Ceiling(job.ConcurrencyDuration.TotalMilliseconds)) : DBNull.Value,
        });
        if (uniqueKey)
        {
            p.Add(Text("unique_key", job.UniqueKey));
        }

        p.Add(Text("trace_parent", job.TraceParent));
        p.Add(new NpgsqlParameter("batch_id", NpgsqlDbType.Bigint) { Value = (object?)batchId ?? DBNull.Value });
        p.Add(Now(now));
    }

    /// <summary>Inserts one job inside the call's transaction; returns its id, or the id of the job owning its uniqueness key.</summary>
    private static async Task<long> InsertOneAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, NewJob job, DateTimeOffset? now, CancellationToken cancellationToken, long? batchId = null)
    {
        long id;
        bool owned;
        bool needsAcquire;
        await using (var command = new NpgsqlCommand(JobsSql.JobInsertOne, connection, transaction))
        {
            AddNewJobParameters(command.Parameters, job, batchId, now, uniqueKey: true);

            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (!reader.IsDBNull(0))
            {
                // The key is held by a live job (or by an earlier job of this call): nothing inserted.
                return reader.GetInt64(0);
            }

            id = reader.GetInt64(1);
            owned = reader.GetBoolean(2);
            needsAcquire = reader.GetBoolean(3);
        }

        if (job.UniqueKey is not null && !owned)
        {
            // A concurrent enqueue of the same key committed first (the insert waited for it).
            var resolved = false;
            for (var attempt = 0; attempt < UniqueResolveAttempts && !resolved; attempt++)
            {
                await using var command = new NpgsqlCommand(JobsSql.JobUniqueResolve, connection, transaction);
                command.Parameters.Add(new NpgsqlParameter<string>("unique_key", NpgsqlDbType.Text) { TypedValue = job.UniqueKey });
                command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = id });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (!reader.IsDBNull(0))
                {
                    return reader.GetInt64(0);
                }

                resolved = reader.GetBoolean(1);
            }

            if (!resolved)
            {
                throw new InvalidOperationException($"could not settle unique key '{job.UniqueKey}': its owner kept changing during {UniqueResolveAttempts} attempts");
            }
        }

        if (needsAcquire)
        {
            await AcquireAsync(connection, transaction, [id], job.DiscardOnConflict, now, cancellationToken).ConfigureAwait(false);
        }

        return id;
    }

    /// <inheritdoc />
    public async Task<JobInfo?> JobGetAsync(long jobId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        var job = new NpgsqlBatchCommand(JobsSql.JobGet);
        job.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
        var errors = new NpgsqlBatchCommand(JobsSql.JobErrors);
        errors.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
        var runs = new NpgsqlBatchCommand(JobsSql.JobRuns);
        runs.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
        var logs = new NpgsqlBatchCommand(JobsSql.JobLogs);
        logs.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
        var parents = new NpgsqlBatchCommand(WorkflowsSql.ParentsOf);
        parents.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
        var children = new NpgsqlBatchCommand(WorkflowsSql.ChildrenOf);
        children.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
        batch.BatchCommands.Add(job);
        batch.BatchCommands.Add(errors);
        batch.BatchCommands.Add(runs);
        batch.BatchCommands.Add(logs);
        batch.BatchCommands.Add(parents);
        batch.BatchCommands.Add(children);

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var (info, current) = StorageRows.ReadJob(reader, ReadTime);

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<JobError>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(StorageRows.ReadError(reader, ReadTime));
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var history = new List<JobRun>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            history.Add(StorageRows.ReadRun(reader, ReadTime));
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var lines = new List<JobLogLine>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            lines.Add(StorageRows.ReadLogLine(reader, ReadTime));
        }

        if (current is not null)
        {
            history.Add(current);
        }

        var edges = new List<JobDependencyInfo>[2];
        for (var i = 0; i < edges.Length; i++)
        {
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            edges[i] = [];
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                edges[i].Add(WorkflowSteps.ReadDependency(reader));
            }
        }

        return info with { Errors = list, Runs = history, Parents = edges[0], Children = edges[1], Logs = lines };
    }

    /// <inheritdoc />
    public async Task RunRecordAsync(RunRecordParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Ending);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(JobsSql.RunRecord, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.JobId });
        command.Parameters.Add(new NpgsqlParameter("claim_id", NpgsqlDbType.Bigint) { Value = parameters.Claim.ClaimId == 0 ? DBNull.Value : parameters.Claim.ClaimId });
        command.Parameters.Add(new NpgsqlParameter<int>("attempt", NpgsqlDbType.Integer) { TypedValue = parameters.Claim.Attempt });
        command.Parameters.Add(Time("started_at", parameters.StartedAt));
        command.Parameters.Add(Now(parameters.Now));
        AddRunEnding(command.Parameters, parameters.Ending, parameters.Runner);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static (NpgsqlConnection? Connection, NpgsqlTransaction? Transaction) CallerConnection(DbConnection? connection, DbTransaction? transaction)
    {
        if (connection is null)
        {
            if (transaction is not null)
            {
                throw new ArgumentException("a transaction was given without its connection; pass both, or neither", nameof(transaction));
            }

            return (null, null);
        }

        if (connection is not NpgsqlConnection npgsql)
        {
            throw new ArgumentException($"the connection is a {connection.GetType().FullName}; this Keel store is PostgreSQL, enqueue on a connection to the same database", nameof(connection));
        }

        if (transaction is not null and not NpgsqlTransaction)
        {
            throw new ArgumentException($"the transaction is a {transaction.GetType().FullName}; this Keel store is PostgreSQL, enqueue in a transaction on a connection to the same database", nameof(transaction));
        }

        return (npgsql, (NpgsqlTransaction?)transaction);
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Workflows: batches started, read and listed; inserts of jobs with parents or in a batch; the steps of <see cref="WorkflowSteps"/> on PostgreSQL.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <summary>The most jobs one bulk insert statement of a batch carries: 100,000 jobs are ten round trips.</summary>
    private const int BulkChunk = 10_000;

    /// <inheritdoc />
    public async Task<BatchStartResult> BatchStartAsync(BatchStartParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var (callerConnection, callerTransaction) = CallerConnection(parameters.Connection, parameters.Transaction);
        return await InTransactionAsync(
            callerConnection,
            callerTransaction,
            async (connection, transaction) =>
            {
                if (parameters.ParentBatchId is { } parent)
                {
                    await AddToBatchAsync(connection, transaction, parent, 1, cancellationToken).ConfigureAwait(false);
                }

                long batchId;
                await using (var insert = new NpgsqlCommand(WorkflowsSql.BatchInsert, connection, transaction))
                {
                    insert.Parameters.Add(new NpgsqlParameter("parent_batch_id", NpgsqlDbType.Bigint) { Value = (object?)parameters.ParentBatchId ?? DBNull.Value });
                    insert.Parameters.Add(Text("description", parameters.Description));
                    insert.Parameters.Add(Now(parameters.Now));
                    batchId = (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                }

                if (parameters.Callbacks.Count > 0)
                {
                    await using var callbacks = new NpgsqlBatch(connection, transaction);
                    foreach (var callback in parameters.Callbacks)
                    {
                        var insert = new NpgsqlBatchCommand(WorkflowsSql.CallbackInsert);
                        insert.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
                        insert.Parameters.Add(new NpgsqlParameter<string>("on_event", NpgsqlDbType.Text) { TypedValue = WorkflowSteps.EventName(callback.On) });
                        insert.Parameters.Add(new NpgsqlParameter<string>("kind", NpgsqlDbType.Text) { TypedValue = callback.Job.Kind });
                        insert.Parameters.Add(new NpgsqlParameter<string>("job", NpgsqlDbType.Text) { TypedValue = WorkflowSteps.CallbackJson(callback.Job) });
                        callbacks.BatchCommands.Add(insert);
                    }

                    await callbacks.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                var ids = await InsertWorkflowJobsAsync(connection, transaction, parameters.Jobs, batchId, parameters.Now, cancellationToken).ConfigureAwait(false);
                if (parameters.Jobs.Count == 0)
                {
                    var steps = new PostgreSqlWorkflow(connection, transaction, parameters.Now);
                    await steps.CompleteIfDoneAsync(batchId, await steps.CountersAsync(batchId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                }

                return new BatchStartResult(batchId, ids);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<BatchInfo?> BatchGetAsync(long batchId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        var row = new NpgsqlBatchCommand(WorkflowsSql.BatchGet);
        row.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
        var callbacks = new NpgsqlBatchCommand(WorkflowsSql.BatchCallbacks);
        callbacks.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
        batch.BatchCommands.Add(row);
        batch.BatchCommands.Add(callbacks);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var info = StorageRows.ReadBatch(reader, ReadTime);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<BatchCallbackInfo>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new BatchCallbackInfo(WorkflowSteps.ParseEvent(reader.GetString(0)), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetInt64(2)));
        }

        return info with { Callbacks = list };
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BatchInfo>> BatchesListAsync(BatchesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(WorkflowsSql.BatchesList, connection);
        command.Parameters.Add(new NpgsqlParameter("before_key", NpgsqlDbType.Bigint) { Value = parameters.BeforeId ?? long.MaxValue });
        command.Parameters.Add(new NpgsqlParameter("pending", NpgsqlDbType.Boolean) { Value = parameters.Pending is { } p ? p : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = Math.Max(1, parameters.Limit) });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var batches = new List<BatchInfo>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            batches.Add(StorageRows.ReadBatch(reader, ReadTime));
        }

        return batches;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> BatchJobsListAsync(BatchJobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(WorkflowsSql.BatchJobs, connection);
        command.Parameters.Add(new NpgsqlParameter("batch_id", NpgsqlDbType.Bigint) { Value = parameters.BatchId });
        command.Parameters.Add(new NpgsqlParameter("before_key", NpgsqlDbType.Bigint) { Value = parameters.BeforeId ?? long.MaxValue });
        command.Parameters.Add(new NpgsqlParameter("limit", NpgsqlDbType.Integer) { Value = Math.Max(1, parameters.Limit) });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadSummariesAsync(reader, cancellationToken).ConfigureAwait(false);
    }


    private static bool UsesDependencies(IReadOnlyList<NewJob> jobs)
    {
        for (var i = 0; i < jobs.Count; i++)
        {
            if (jobs[i].Dependencies is { Count: > 0 })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Runs work in the caller's transaction, or in one of its own on the caller's connection or a new one.</summary>
    private async Task<T> InTransactionAsync<T>(NpgsqlConnection? callerConnection, NpgsqlTransaction? callerTransaction, Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        if (callerConnection is not null && callerTransaction is not null)
        {
            return await work(callerConnection, callerTransaction).ConfigureAwait(false);
        }

        NpgsqlConnection? owned = null;
        try
        {
            var connection = callerConnection ?? (owned = await OpenAsync(cancellationToken).ConfigureAwait(false));
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var result = await work(connection, transaction).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            if (owned is not null)
            {
                await owned.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task AddToBatchAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long batchId, int count, CancellationToken cancellationToken)
    {
        await using var add = new NpgsqlCommand(WorkflowsSql.BatchAdd, connection, transaction);
        add.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
        add.Parameters.Add(new NpgsqlParameter<int>("count", NpgsqlDbType.Integer) { TypedValue = count });
        if (await add.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
        {
            throw WorkflowSteps.BatchClosed(batchId);
        }
    }

    /// <summary>
    /// Inserts jobs that join a batch or wait for parents, in input order inside one transaction: runs of plain jobs in
    /// bulk statements, jobs with keys one by one, jobs with parents one by one with their edges.
    /// </summary>
    private static async Task<IReadOnlyList<long>> InsertWorkflowJobsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<NewJob> jobs, long? batchId, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        if (batchId is { } batch)
        {
            // Counted pending before any job is inserted, so the batch cannot complete halfway through.
            WorkflowSteps.CheckBatchJobs(jobs);
            await AddToBatchAsync(connection, transaction, batch, jobs.Count, cancellationToken).ConfigureAwait(false);
        }

        var steps = new PostgreSqlWorkflow(connection, transaction, now);
        var ids = new long[jobs.Count];
        var i = 0;
        while (i < jobs.Count)
        {
            var job = jobs[i];
            ArgumentNullException.ThrowIfNull(job, nameof(jobs));
            if (job.Dependencies is { Count: > 0 } dependencies)
            {
                ids[i] = await InsertDependentAsync(connection, transaction, steps, job, dependencies, new ArraySegment<long>(ids, 0, i), batchId, now, cancellationToken).ConfigureAwait(false);
                i++;
            }
            else if (job.ConcurrencyKey is not null || job.UniqueKey is not null)
            {
                ids[i] = await InsertOneAsync(connection, transaction, job, now, cancellationToken, batchId).ConfigureAwait(false);
                i++;
            }
            else
            {
                var end = i;
                while (end < jobs.Count && end - i < BulkChunk && jobs[end] is { ConcurrencyKey: null, UniqueKey: null, Dependencies: null or { Count: 0 } })
                {
                    end++;
                }

                var inserted = await InsertBulkAsync(connection, transaction, jobs, i, end, batchId, now, cancellationToken).ConfigureAwait(false);
                inserted.CopyTo(ids, i);
                i = end;
            }
        }

        if (batchId is not null)
        {
            // Jobs discarded at insert (a parent settled unmet, a full limit set to discard) count as discarded now.
            var discarded = new List<SettledJob>();
            await using (var select = new NpgsqlCommand(WorkflowsSql.DiscardedAmong, connection, transaction))
            {
                select.Parameters.Add(new NpgsqlParameter<long[]>("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = ids });
                select.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId.Value });
                await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    discarded.Add(new SettledJob(reader.GetInt64(0), ContinueWhen.Discarded, false, batchId));
                }
            }

            await steps.SettleAsync(discarded, cancellationToken).ConfigureAwait(false);
        }

        return ids;
    }

    private static async Task<long[]> InsertBulkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<NewJob> jobs, int start, int end, long? batchId, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        var n = end - start;
        await using var command = new NpgsqlCommand(JobsSql.JobsInsert, connection, transaction);
        AddBulkJobParameters(command.Parameters, jobs, start, n, batchId, now);
        var ids = new long[n];
        var k2 = 0;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            ids[k2++] = reader.GetInt64(0);
        }

        return ids;
    }

    /// <summary>Inserts a job with parents: its row, its edges, then awaiting, discarded or due as they say.</summary>
    private static async Task<long> InsertDependentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PostgreSqlWorkflow steps, NewJob job, IReadOnlyList<NewDependency> dependencies, IReadOnlyList<long> earlier, long? batchId, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        if (job.UniqueKey is not null)
        {
            throw new ArgumentException($"job kind '{job.Kind}' has both a uniqueness key and parents; a continuation cannot be unique", nameof(job));
        }

        long id;
        await using (var insert = new NpgsqlCommand(WorkflowsSql.JobInsertBare, connection, transaction))
        {
            AddNewJobParameters(insert.Parameters, job, batchId, now, uniqueKey: false);
            id = (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        var waiting = await steps.AttachParentsAsync(id, dependencies, earlier, cancellationToken).ConfigureAwait(false);
        if (waiting is null)
        {
            await steps.ExecuteForJobAsync(WorkflowsSql.JobDiscard, id, cancellationToken).ConfigureAwait(false);
        }
        else if (waiting > 0)
        {
            await using var awaiting = new NpgsqlCommand(WorkflowsSql.AwaitingInsert, connection, transaction);
            awaiting.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = id });
            awaiting.Parameters.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = job.Queue });
            awaiting.Parameters.Add(new NpgsqlParameter<int>("priority", NpgsqlDbType.Integer) { TypedValue = job.Priority });
            awaiting.Parameters.Add(new NpgsqlParameter<int>("waiting", NpgsqlDbType.Integer) { TypedValue = waiting.Value });
            awaiting.Parameters.Add(Now(now));
            await awaiting.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await steps.RouteDueAsync(id, cancellationToken).ConfigureAwait(false);
        }

        return id;
    }

    /// <summary>Settles jobs by id that an operator's or recovery's statement moved to a final outcome, reading their workflow flags.</summary>
    private static async Task SettleIdsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long[] jobIds, ContinueWhen outcome, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        var settled = new List<SettledJob>();
        await using (var select = new NpgsqlCommand(WorkflowsSql.JobsFlags, connection, transaction))
        {
            select.Parameters.Add(new NpgsqlParameter<long[]>("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = jobIds });
            await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                settled.Add(new SettledJob(reader.GetInt64(0), outcome, !reader.IsDBNull(1), reader.IsDBNull(2) ? null : reader.GetInt64(2)));
            }
        }

        await new PostgreSqlWorkflow(connection, transaction, now).SettleAsync(settled, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The steps of <see cref="WorkflowSteps"/> in one PostgreSQL transaction.</summary>
    private sealed class PostgreSqlWorkflow(NpgsqlConnection connection, NpgsqlTransaction transaction, DateTimeOffset? now) : WorkflowSteps
    {
        public async Task<BatchCounters> CountersAsync(long batchId, CancellationToken cancellationToken)
        {
            await using var select = Command(WorkflowsSql.BatchCounters);
            select.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await r.ReadAsync(cancellationToken).ConfigureAwait(false);
            return ReadCounters(r);
        }

        public async Task ExecuteForJobAsync(string sql, long jobId, CancellationToken cancellationToken)
        {
            await using var command = Command(sql);
            command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
            if (sql.Contains("@now", StringComparison.Ordinal))
            {
                command.Parameters.Add(Now(now));
            }

            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <summary>A job leaves waiting for parents: scheduled for its own later time, else ready (taking a permit) or blocked.</summary>
        public async Task RouteDueAsync(long jobId, CancellationToken cancellationToken)
        {
            bool later;
            bool limited;
            string queue;
            int priority;
            DateTimeOffset? at;
            await using (var select = Command(WorkflowsSql.JobFlags))
            {
                select.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
                select.Parameters.Add(Now(now));
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                later = r.GetBoolean(2);
                limited = r.GetBoolean(3);
                queue = r.GetString(4);
                priority = r.GetInt32(5);
                at = NullableTime(r, 6);
            }

            if (later)
            {
                await using var scheduled = Command(WorkflowsSql.ScheduledInsert);
                scheduled.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
                scheduled.Parameters.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = queue });
                scheduled.Parameters.Add(new NpgsqlParameter<int>("priority", NpgsqlDbType.Integer) { TypedValue = priority });
                scheduled.Parameters.Add(Time("scheduled_at", at));
                scheduled.Parameters.Add(Now(now));
                await scheduled.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (limited)
            {
                await AcquireAsync(connection, transaction, [jobId], discard: false, now, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await using var ready = Command(WorkflowsSql.ReadyInsert);
                ready.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
                ready.Parameters.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = queue });
                ready.Parameters.Add(new NpgsqlParameter<int>("priority", NpgsqlDbType.Integer) { TypedValue = priority });
                ready.Parameters.Add(Now(now));
                await ready.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        protected override async Task<IReadOnlyList<SettledEdge>> SettleEdgesAsync(long parentId, ContinueWhen outcome, CancellationToken cancellationToken)
        {
            await using var update = Command(WorkflowsSql.EdgesSettle);
            update.Parameters.Add(new NpgsqlParameter<long>("parent_id", NpgsqlDbType.Bigint) { TypedValue = parentId });
            update.Parameters.Add(new NpgsqlParameter<int>("outcome", NpgsqlDbType.Integer) { TypedValue = (int)outcome });
            await using var r = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var edges = new List<SettledEdge>();
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                edges.Add(new SettledEdge(r.GetInt64(0), (ContinueWhen)r.GetInt32(1), (UnmetPolicy)r.GetInt32(2)));
            }

            return edges;
        }

        protected override async Task<long?> ParentSettledAsync(long childId, CancellationToken cancellationToken)
        {
            await using var update = Command(WorkflowsSql.AwaitingParentSettled);
            update.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = childId });
            return await update.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is int waiting ? waiting : null;
        }

        protected override async Task<SettledJob?> DiscardAwaitingAsync(long childId, CancellationToken cancellationToken)
        {
            await using (var delete = Command(WorkflowsSql.AwaitingDelete))
            {
                delete.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = childId });
                if (await delete.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
                {
                    return null;
                }
            }

            SettledJob discarded;
            await using (var update = Command(WorkflowsSql.JobDiscardReturning))
            {
                update.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = childId });
                update.Parameters.Add(Now(now));
                await using var r = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                discarded = new SettledJob(childId, ContinueWhen.Discarded, !r.IsDBNull(0), r.IsDBNull(1) ? null : r.GetInt64(1));
            }

            await ExecuteForJobAsync(WorkflowsSql.UniqueKeyFree, childId, cancellationToken).ConfigureAwait(false);
            return discarded;
        }

        protected override async Task MakeAwaitingDueAsync(long childId, CancellationToken cancellationToken)
        {
            await ExecuteForJobAsync(WorkflowsSql.AwaitingDelete, childId, cancellationToken).ConfigureAwait(false);
            await RouteDueAsync(childId, cancellationToken).ConfigureAwait(false);
        }

        protected override async Task<BatchCounters?> CountInBatchAsync(long batchId, int succeeded, int failed, int discarded, CancellationToken cancellationToken)
        {
            await using var update = Command(WorkflowsSql.BatchCount);
            update.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
            update.Parameters.Add(new NpgsqlParameter<int>("succeeded", NpgsqlDbType.Integer) { TypedValue = succeeded });
            update.Parameters.Add(new NpgsqlParameter<int>("failed", NpgsqlDbType.Integer) { TypedValue = failed });
            update.Parameters.Add(new NpgsqlParameter<int>("discarded", NpgsqlDbType.Integer) { TypedValue = discarded });
            await using var r = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadCounters(r) : null;
        }

        protected override async Task<bool> MarkBatchCompletedAsync(long batchId, bool allSucceeded, CancellationToken cancellationToken)
        {
            await using var update = Command(WorkflowsSql.BatchComplete);
            update.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
            update.Parameters.Add(new NpgsqlParameter<bool>("all", NpgsqlDbType.Boolean) { TypedValue = allSucceeded });
            update.Parameters.Add(Now(now));
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }

        protected override async Task<bool> MarkBatchSucceededAsync(long batchId, CancellationToken cancellationToken)
        {
            await using var update = Command(WorkflowsSql.BatchSucceed);
            update.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
            update.Parameters.Add(Now(now));
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }

        protected override async Task EnqueueCallbacksAsync(long batchId, IReadOnlyList<BatchEvent> events, CancellationToken cancellationToken)
        {
            foreach (var on in events)
            {
                var due = new List<(long Id, NewJob Job)>();
                await using (var select = Command(WorkflowsSql.CallbacksDue))
                {
                    select.Parameters.Add(new NpgsqlParameter<long>("batch_id", NpgsqlDbType.Bigint) { TypedValue = batchId });
                    select.Parameters.Add(new NpgsqlParameter<string>("on_event", NpgsqlDbType.Text) { TypedValue = WorkflowSteps.EventName(on) });
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        due.Add((r.GetInt64(0), WorkflowSteps.CallbackFromJson(r.GetString(1))));
                    }
                }

                foreach (var (id, job) in due)
                {
                    var jobId = await InsertOneAsync(connection, transaction, job, now, cancellationToken).ConfigureAwait(false);
                    await using var record = Command(WorkflowsSql.CallbackEnqueued);
                    record.Parameters.Add(new NpgsqlParameter<long>("id", NpgsqlDbType.Bigint) { TypedValue = id });
                    record.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
                    await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }

        protected override async Task<ContinueWhen?> MarkParentAsync(long parentId, CancellationToken cancellationToken)
        {
            await using (var mark = Command(WorkflowsSql.ParentMark))
            {
                mark.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parentId });
                if (await mark.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is null)
                {
                    throw NoSuchParent(parentId);
                }
            }

            // A new statement: under READ COMMITTED it sees an outcome committed while the mark waited for the row.
            await using var select = Command(WorkflowsSql.ParentOutcome);
            select.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parentId });
            return OutcomeOf(await select.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false));
        }

        protected override async Task InsertEdgeAsync(long parentId, long childId, ContinueWhen waitOn, UnmetPolicy onUnmet, ContinueWhen? outcome, CancellationToken cancellationToken)
        {
            await using var insert = Command(WorkflowsSql.EdgeInsert);
            insert.Parameters.Add(new NpgsqlParameter<long>("parent_id", NpgsqlDbType.Bigint) { TypedValue = parentId });
            insert.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = childId });
            insert.Parameters.Add(new NpgsqlParameter<int>("wait_on", NpgsqlDbType.Integer) { TypedValue = (int)waitOn });
            insert.Parameters.Add(new NpgsqlParameter<int>("on_unmet", NpgsqlDbType.Integer) { TypedValue = (int)onUnmet });
            insert.Parameters.Add(new NpgsqlParameter("outcome", NpgsqlDbType.Integer) { Value = outcome is { } o ? (int)o : DBNull.Value });
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        private static BatchCounters ReadCounters(NpgsqlDataReader r)
            => new(r.GetInt64(0), r.GetInt64(1), r.GetBoolean(2), r.GetBoolean(3), r.IsDBNull(4) ? null : r.GetInt64(4));

        private NpgsqlCommand Command(string sql) => new(sql, connection, transaction);
    }
}

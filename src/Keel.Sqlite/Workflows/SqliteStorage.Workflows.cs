using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>Workflows: batches started, read and listed; the steps of <see cref="WorkflowSteps"/> on SQLite.</summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public async Task<BatchStartResult> BatchStartAsync(BatchStartParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Connection is null)
        {
            return await WriteAsync((c, t) => StartBatchAsync(c, t, parameters, Micros(parameters.Now), cancellationToken), cancellationToken);
        }

        var (connection, callers) = CallersConnection(parameters.Connection, parameters.Transaction);
        if (callers is not null)
        {
            return await StartBatchAsync(connection, callers, parameters, Micros(parameters.Now), cancellationToken);
        }

        await using var own = connection.BeginTransaction(deferred: false);
        var started = await StartBatchAsync(connection, own, parameters, Micros(parameters.Now), cancellationToken);
        await own.CommitAsync(cancellationToken);
        return started;
    }

    /// <inheritdoc />
    public async Task<BatchInfo?> BatchGetAsync(long batchId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: true);
        BatchInfo batch;
        await using (var select = Command(connection, transaction, WorkflowsSql.BatchGet))
        {
            select.Parameters.AddWithValue("@batch_id", batchId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken))
            {
                return null;
            }

            batch = StorageRows.ReadBatch(r, Time);
        }

        var callbacks = new List<BatchCallbackInfo>();
        await using (var select = Command(connection, transaction, WorkflowsSql.BatchCallbacks))
        {
            select.Parameters.AddWithValue("@batch_id", batchId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                callbacks.Add(new BatchCallbackInfo(WorkflowSteps.ParseEvent(r.GetString(0)), r.GetString(1), r.IsDBNull(2) ? null : r.GetInt64(2)));
            }
        }

        return batch with { Callbacks = callbacks };
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<BatchInfo>> BatchesListAsync(BatchesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, WorkflowsSql.BatchesList);
        select.Parameters.AddWithValue("@before_key", parameters.BeforeId ?? long.MaxValue);
        select.Parameters.AddWithValue("@pending", parameters.Pending is { } p ? p : DBNull.Value);
        select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var batches = new List<BatchInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            batches.Add(StorageRows.ReadBatch(r, Time));
        }

        return batches;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> BatchJobsListAsync(BatchJobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, WorkflowsSql.BatchJobs);
        select.Parameters.AddWithValue("@batch_id", parameters.BatchId);
        select.Parameters.AddWithValue("@before_key", parameters.BeforeId ?? long.MaxValue);
        select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        return await ReadSummariesAsync(r, cancellationToken);
    }


    private static (SqliteConnection Connection, SqliteTransaction? Transaction) CallersConnection(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? transaction)
    {
        if (connection is not SqliteConnection sqlite)
        {
            throw new ArgumentException($"the connection is a {connection.GetType().Name}; this Keel store is SQLite, so enqueue on a SqliteConnection to the same database file", nameof(connection));
        }

        if (transaction is not null and not SqliteTransaction)
        {
            throw new ArgumentException($"the transaction is a {transaction.GetType().Name}, not a SqliteTransaction", nameof(transaction));
        }

        return (sqlite, transaction as SqliteTransaction);
    }

    private static async Task<BatchStartResult> StartBatchAsync(SqliteConnection connection, SqliteTransaction transaction, BatchStartParams parameters, long now, CancellationToken cancellationToken)
    {
        if (parameters.ParentBatchId is { } parent)
        {
            await AddToBatchAsync(connection, transaction, parent, 1, cancellationToken);
        }

        long batchId;
        await using (var insert = Command(connection, transaction, WorkflowsSql.BatchInsert))
        {
            insert.Parameters.AddWithValue("@parent_batch_id", (object?)parameters.ParentBatchId ?? DBNull.Value);
            insert.Parameters.AddWithValue("@description", (object?)parameters.Description ?? DBNull.Value);
            insert.Parameters.AddWithValue("@now", now);
            batchId = Convert.ToInt64(await insert.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
        }

        foreach (var callback in parameters.Callbacks)
        {
            await using var insert = Command(connection, transaction, WorkflowsSql.CallbackInsert);
            insert.Parameters.AddWithValue("@batch_id", batchId);
            insert.Parameters.AddWithValue("@on_event", WorkflowSteps.EventName(callback.On));
            insert.Parameters.AddWithValue("@kind", callback.Job.Kind);
            insert.Parameters.AddWithValue("@job", WorkflowSteps.CallbackJson(callback.Job));
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        var ids = await InsertJobsAsync(connection, transaction, new JobsInsertParams(parameters.Jobs, parameters.Now) { BatchId = batchId }, now, cancellationToken);
        if (parameters.Jobs.Count == 0)
        {
            var steps = new SqliteWorkflow(connection, transaction, now);
            await steps.CompleteIfDoneAsync(batchId, await steps.CountersAsync(batchId, cancellationToken), cancellationToken);
        }

        return new BatchStartResult(batchId, ids);
    }

    private static async Task AddToBatchAsync(SqliteConnection connection, SqliteTransaction transaction, long batchId, int count, CancellationToken cancellationToken)
    {
        await using var add = Command(connection, transaction, WorkflowsSql.BatchAdd);
        add.Parameters.AddWithValue("@batch_id", batchId);
        add.Parameters.AddWithValue("@count", count);
        if (await add.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            throw WorkflowSteps.BatchClosed(batchId);
        }
    }

    private static async Task ExecuteForBatchAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, long batchId, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        command.Parameters.AddWithValue("@batch_id", batchId);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Settles jobs that reached a final outcome in this transaction (plain ones cost nothing).</summary>
    private static Task SettleAsync(SqliteConnection connection, SqliteTransaction transaction, IEnumerable<SettledJob> settled, long now, CancellationToken cancellationToken)
        => new SqliteWorkflow(connection, transaction, now).SettleAsync(settled, cancellationToken);

    /// <summary>A job's workflow flags, read when the statement that settled it did not return them (operator actions).</summary>
    private static async Task<(bool HasDependents, long? BatchId, long? ScheduledAt)> FlagsAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, WorkflowsSql.JobFlags);
        select.Parameters.AddWithValue("@job_id", jobId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken)
            ? (!r.IsDBNull(0), r.IsDBNull(1) ? null : r.GetInt64(1), r.IsDBNull(2) ? null : r.GetInt64(2))
            : (false, null, null);
    }

    /// <summary>The steps of <see cref="WorkflowSteps"/> in one SQLite transaction.</summary>
    private sealed class SqliteWorkflow(SqliteConnection connection, SqliteTransaction transaction, long now) : WorkflowSteps
    {
        public async Task<BatchCounters> CountersAsync(long batchId, CancellationToken cancellationToken)
        {
            await using var select = Command(connection, transaction, WorkflowsSql.BatchCounters);
            select.Parameters.AddWithValue("@batch_id", batchId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken);
            await r.ReadAsync(cancellationToken);
            return ReadCounters(r);
        }

        protected override async Task<IReadOnlyList<SettledEdge>> SettleEdgesAsync(long parentId, ContinueWhen outcome, CancellationToken cancellationToken)
        {
            await using var update = Command(connection, transaction, WorkflowsSql.EdgesSettle);
            update.Parameters.AddWithValue("@parent_id", parentId);
            update.Parameters.AddWithValue("@outcome", (int)outcome);
            await using var r = await update.ExecuteReaderAsync(cancellationToken);
            var edges = new List<SettledEdge>();
            while (await r.ReadAsync(cancellationToken))
            {
                edges.Add(new SettledEdge(r.GetInt64(0), (ContinueWhen)r.GetInt32(1), (UnmetPolicy)r.GetInt32(2)));
            }

            return edges;
        }

        protected override async Task<long?> ParentSettledAsync(long childId, CancellationToken cancellationToken)
        {
            await using var update = Command(connection, transaction, WorkflowsSql.AwaitingParentSettled);
            update.Parameters.AddWithValue("@job_id", childId);
            return await update.ExecuteScalarAsync(cancellationToken) is long waiting ? waiting : null;
        }

        protected override async Task<SettledJob?> DiscardAwaitingAsync(long childId, CancellationToken cancellationToken)
        {
            await using (var delete = Command(connection, transaction, WorkflowsSql.AwaitingDelete))
            {
                delete.Parameters.AddWithValue("@job_id", childId);
                if (await delete.ExecuteScalarAsync(cancellationToken) is null)
                {
                    return null;
                }
            }

            SettledJob discarded;
            await using (var update = Command(connection, transaction, WorkflowsSql.JobDiscardReturning))
            {
                update.Parameters.AddWithValue("@job_id", childId);
                update.Parameters.AddWithValue("@now", now);
                await using var r = await update.ExecuteReaderAsync(cancellationToken);
                await r.ReadAsync(cancellationToken);
                discarded = new SettledJob(childId, ContinueWhen.Discarded, !r.IsDBNull(0), r.IsDBNull(1) ? null : r.GetInt64(1));
            }

            await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, childId, now, cancellationToken);
            return discarded;
        }

        protected override async Task MakeAwaitingDueAsync(long childId, CancellationToken cancellationToken)
        {
            await ExecuteForJobAsync(connection, transaction, WorkflowsSql.AwaitingDelete, childId, now, cancellationToken);
            var (_, _, scheduledAt) = await FlagsAsync(connection, transaction, childId, cancellationToken);
            var routing = await RoutingAsync(connection, transaction, childId, cancellationToken);
            if (scheduledAt is { } due && due > now)
            {
                await using var scheduled = Command(connection, transaction, ScheduledSql.ScheduledInsert);
                scheduled.Parameters.AddWithValue("@job_id", childId);
                scheduled.Parameters.AddWithValue("@queue", routing.Queue);
                scheduled.Parameters.AddWithValue("@priority", routing.Priority);
                scheduled.Parameters.AddWithValue("@scheduled_at", due);
                scheduled.Parameters.AddWithValue("@now", now);
                await scheduled.ExecuteNonQueryAsync(cancellationToken);
                return;
            }

            await MakeDueAsync(connection, transaction, routing, discardOnConflict: false, now, cancellationToken);
        }

        protected override async Task<BatchCounters?> CountInBatchAsync(long batchId, int succeeded, int failed, int discarded, CancellationToken cancellationToken)
        {
            await using var update = Command(connection, transaction, WorkflowsSql.BatchCount);
            update.Parameters.AddWithValue("@batch_id", batchId);
            update.Parameters.AddWithValue("@succeeded", succeeded);
            update.Parameters.AddWithValue("@failed", failed);
            update.Parameters.AddWithValue("@discarded", discarded);
            await using var r = await update.ExecuteReaderAsync(cancellationToken);
            return await r.ReadAsync(cancellationToken) ? ReadCounters(r) : null;
        }

        protected override async Task<bool> MarkBatchCompletedAsync(long batchId, bool allSucceeded, CancellationToken cancellationToken)
        {
            await using var update = Command(connection, transaction, WorkflowsSql.BatchComplete);
            update.Parameters.AddWithValue("@batch_id", batchId);
            update.Parameters.AddWithValue("@all", allSucceeded);
            update.Parameters.AddWithValue("@now", now);
            return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
        }

        protected override async Task<bool> MarkBatchSucceededAsync(long batchId, CancellationToken cancellationToken)
        {
            await using var update = Command(connection, transaction, WorkflowsSql.BatchSucceed);
            update.Parameters.AddWithValue("@batch_id", batchId);
            update.Parameters.AddWithValue("@now", now);
            return await update.ExecuteNonQueryAsync(cancellationToken) == 1;
        }

        protected override async Task EnqueueCallbacksAsync(long batchId, IReadOnlyList<BatchEvent> events, CancellationToken cancellationToken)
        {
            foreach (var on in events)
            {
                var due = new List<(long Id, NewJob Job)>();
                await using (var select = Command(connection, transaction, WorkflowsSql.CallbacksDue))
                {
                    select.Parameters.AddWithValue("@batch_id", batchId);
                    select.Parameters.AddWithValue("@on_event", WorkflowSteps.EventName(on));
                    await using var r = await select.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        due.Add((r.GetInt64(0), WorkflowSteps.CallbackFromJson(r.GetString(1))));
                    }
                }

                foreach (var (id, job) in due)
                {
                    var jobId = (await InsertJobsAsync(connection, transaction, new JobsInsertParams([job], null), now, cancellationToken))[0];
                    await using var record = Command(connection, transaction, WorkflowsSql.CallbackEnqueued);
                    record.Parameters.AddWithValue("@id", id);
                    record.Parameters.AddWithValue("@job_id", jobId);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }
            }
        }

        protected override async Task<ContinueWhen?> MarkParentAsync(long parentId, CancellationToken cancellationToken)
        {
            await using (var mark = Command(connection, transaction, WorkflowsSql.ParentMark))
            {
                mark.Parameters.AddWithValue("@job_id", parentId);
                if (await mark.ExecuteScalarAsync(cancellationToken) is null)
                {
                    throw NoSuchParent(parentId);
                }
            }

            await using var select = Command(connection, transaction, WorkflowsSql.ParentOutcome);
            select.Parameters.AddWithValue("@job_id", parentId);
            return OutcomeOf(await select.ExecuteScalarAsync(cancellationToken));
        }

        protected override async Task InsertEdgeAsync(long parentId, long childId, ContinueWhen waitOn, UnmetPolicy onUnmet, ContinueWhen? outcome, CancellationToken cancellationToken)
        {
            await using var insert = Command(connection, transaction, WorkflowsSql.EdgeInsert);
            insert.Parameters.AddWithValue("@parent_id", parentId);
            insert.Parameters.AddWithValue("@job_id", childId);
            insert.Parameters.AddWithValue("@wait_on", (int)waitOn);
            insert.Parameters.AddWithValue("@on_unmet", (int)onUnmet);
            insert.Parameters.AddWithValue("@outcome", outcome is { } o ? (int)o : DBNull.Value);
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }

        private static BatchCounters ReadCounters(SqliteDataReader r)
            => new(r.GetInt64(0), r.GetInt64(1), r.GetBoolean(2), r.GetBoolean(3), r.IsDBNull(4) ? null : r.GetInt64(4));
    }
}

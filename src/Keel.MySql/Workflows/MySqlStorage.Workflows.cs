using System.Globalization;
using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>Workflows: batches started, read and listed; the steps of <see cref="WorkflowSteps"/> on MariaDB/MySQL.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public async Task<BatchStartResult> BatchStartAsync(BatchStartParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Connection is null)
        {
            return await WriteAsync(parameters.Now, session => StartBatchAsync(session, parameters, cancellationToken), cancellationToken).ConfigureAwait(false);
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
            return await StartBatchAsync(await Session.WithinAsync(connection, callers, parameters.Now, cancellationToken).ConfigureAwait(false), parameters, cancellationToken).ConfigureAwait(false);
        }

        await using var own = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false);
        var started = await StartBatchAsync(await Session.WithinAsync(connection, own, parameters.Now, cancellationToken).ConfigureAwait(false), parameters, cancellationToken).ConfigureAwait(false);
        await own.CommitAsync(cancellationToken).ConfigureAwait(false);
        return started;
    }

    /// <inheritdoc />
    public async Task<BatchInfo?> BatchGetAsync(long batchId, CancellationToken cancellationToken)
        => await ReadAsync(
            null,
            async session =>
            {
                BatchInfo batch;
                await using (var select = session.Command(WorkflowsSql.BatchGet))
                {
                    select.Parameters.AddWithValue("@batch_id", batchId);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        return null;
                    }

                    batch = StorageRows.ReadBatch(r, Time);
                }

                var callbacks = new List<BatchCallbackInfo>();
                await using (var select = session.Command(WorkflowsSql.BatchCallbacks))
                {
                    select.Parameters.AddWithValue("@batch_id", batchId);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        callbacks.Add(new BatchCallbackInfo(WorkflowSteps.ParseEvent(r.GetString(0)), r.GetString(1), r.IsDBNull(2) ? null : r.GetInt64(2)));
                    }
                }

                return batch with { Callbacks = callbacks };
            },
            cancellationToken).ConfigureAwait(false);

    /// <inheritdoc />
    public async Task<IReadOnlyList<BatchInfo>> BatchesListAsync(BatchesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await ReadAsync(
            null,
            async session =>
            {
                await using var select = session.Command(WorkflowsSql.BatchesList);
                select.Parameters.AddWithValue("@before_key", parameters.BeforeId ?? long.MaxValue);
                select.Parameters.AddWithValue("@pending", parameters.Pending is { } p ? p : DBNull.Value);
                select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                var batches = new List<BatchInfo>();
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    batches.Add(StorageRows.ReadBatch(r, Time));
                }

                return (IReadOnlyList<BatchInfo>)batches;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<JobSummary>> BatchJobsListAsync(BatchJobsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await ReadAsync(
            null,
            async session =>
            {
                await using var select = session.Command(WorkflowsSql.BatchJobs);
                select.Parameters.AddWithValue("@batch_id", parameters.BatchId);
                select.Parameters.AddWithValue("@before_key", parameters.BeforeId ?? long.MaxValue);
                select.Parameters.AddWithValue("@limit", Math.Max(1, parameters.Limit));
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                return await ReadSummariesAsync(r, cancellationToken).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
    }


    private static async Task<BatchStartResult> StartBatchAsync(Session session, BatchStartParams parameters, CancellationToken cancellationToken)
    {
        if (parameters.ParentBatchId is { } parent)
        {
            await AddToBatchAsync(session, parent, 1, cancellationToken).ConfigureAwait(false);
        }

        long batchId;
        await using (var insert = session.Command(WorkflowsSql.BatchInsert))
        {
            insert.Parameters.AddWithValue("@parent_batch_id", (object?)parameters.ParentBatchId ?? DBNull.Value);
            insert.Parameters.AddWithValue("@description", (object?)parameters.Description ?? DBNull.Value);
            batchId = Convert.ToInt64(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }

        foreach (var callback in parameters.Callbacks)
        {
            await using var insert = session.Command(WorkflowsSql.CallbackInsert);
            insert.Parameters.AddWithValue("@batch_id", batchId);
            insert.Parameters.AddWithValue("@on_event", WorkflowSteps.EventName(callback.On));
            insert.Parameters.AddWithValue("@kind", callback.Job.Kind);
            insert.Parameters.AddWithValue("@job", WorkflowSteps.CallbackJson(callback.Job));
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var ids = parameters.Jobs.Count == 0 ? [] : await InsertJobsAsync(session, parameters.Jobs, cancellationToken, batchId).ConfigureAwait(false);
        if (parameters.Jobs.Count == 0)
        {
            var steps = new MySqlWorkflow(session);
            await steps.CompleteIfDoneAsync(batchId, await steps.CountersAsync(batchId, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }

        return new BatchStartResult(batchId, ids);
    }

    private static async Task AddToBatchAsync(Session session, long batchId, int count, CancellationToken cancellationToken)
    {
        await using var add = session.Command(WorkflowsSql.BatchAdd);
        add.Parameters.AddWithValue("@batch_id", batchId);
        add.Parameters.AddWithValue("@count", count);
        if (Convert.ToInt64(await add.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture) == 0)
        {
            throw WorkflowSteps.BatchClosed(batchId);
        }
    }

    private static async Task ExecuteForBatchAsync(Session session, string sql, long batchId, CancellationToken cancellationToken)
    {
        await using var command = session.Command(sql);
        command.Parameters.AddWithValue("@batch_id", batchId);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A job's workflow flags, read when the statement that settled it did not return them.</summary>
    private static async Task<(bool HasDependents, long? BatchId, long? ScheduledAt)> FlagsAsync(Session session, long jobId, CancellationToken cancellationToken)
    {
        await using var select = session.Command(WorkflowsSql.JobFlags);
        select.Parameters.AddWithValue("@job_id", jobId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await r.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? (!r.IsDBNull(0), r.IsDBNull(1) ? null : r.GetInt64(1), r.IsDBNull(2) ? null : r.GetInt64(2))
            : (false, null, null);
    }

    private static Task SettleAsync(Session session, IEnumerable<SettledJob> settled, CancellationToken cancellationToken)
        => new MySqlWorkflow(session).SettleAsync(settled, cancellationToken);

    /// <summary>The steps of <see cref="WorkflowSteps"/> in one MySQL session's transaction.</summary>
    private sealed class MySqlWorkflow(Session session) : WorkflowSteps
    {
        public async Task<BatchCounters> CountersAsync(long batchId, CancellationToken cancellationToken)
        {
            await using var select = session.Command(WorkflowsSql.BatchCounters);
            select.Parameters.AddWithValue("@batch_id", batchId);
            await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await r.ReadAsync(cancellationToken).ConfigureAwait(false);
            return ReadCounters(r);
        }

        protected override async Task<IReadOnlyList<SettledEdge>> SettleEdgesAsync(long parentId, ContinueWhen outcome, CancellationToken cancellationToken)
        {
            await using var update = session.Command(WorkflowsSql.EdgesSettle);
            update.Parameters.AddWithValue("@parent_id", parentId);
            update.Parameters.AddWithValue("@outcome", (int)outcome);
            var edges = new List<SettledEdge>();
            await using var r = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                edges.Add(new SettledEdge(r.GetInt64(0), (ContinueWhen)r.GetInt32(1), (UnmetPolicy)r.GetInt32(2)));
            }

            return edges;
        }

        protected override async Task<long?> ParentSettledAsync(long childId, CancellationToken cancellationToken)
        {
            await using var update = session.Command(WorkflowsSql.AwaitingParentSettled);
            update.Parameters.AddWithValue("@job_id", childId);
            return await update.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is { } waiting and not DBNull
                ? Convert.ToInt64(waiting, CultureInfo.InvariantCulture)
                : null;
        }

        protected override async Task<SettledJob?> DiscardAwaitingAsync(long childId, CancellationToken cancellationToken)
        {
            await using (var delete = session.Command(WorkflowsSql.AwaitingDelete))
            {
                delete.Parameters.AddWithValue("@job_id", childId);
                if (await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
                {
                    return null;
                }
            }

            SettledJob discarded;
            await using (var update = session.Command(WorkflowsSql.JobDiscardReturning))
            {
                update.Parameters.AddWithValue("@job_id", childId);
                await using var r = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await r.ReadAsync(cancellationToken).ConfigureAwait(false);
                discarded = new SettledJob(childId, ContinueWhen.Discarded, !r.IsDBNull(0), r.IsDBNull(1) ? null : r.GetInt64(1));
            }

            await ExecuteForJobAsync(session, JobsSql.UniqueKeyFree, childId, cancellationToken).ConfigureAwait(false);
            return discarded;
        }

        protected override async Task MakeAwaitingDueAsync(long childId, CancellationToken cancellationToken)
        {
            await ExecuteForJobAsync(session, WorkflowsSql.AwaitingDelete, childId, cancellationToken).ConfigureAwait(false);
            var (_, _, scheduledAt) = await FlagsAsync(session, childId, cancellationToken).ConfigureAwait(false);
            var routing = await RoutingAsync(session, childId, cancellationToken).ConfigureAwait(false);
            if (scheduledAt is { } due && due > await session.NowAsync(cancellationToken).ConfigureAwait(false))
            {
                await using var scheduled = session.Command(ScheduledSql.ScheduledInsert);
                scheduled.Parameters.AddWithValue("@job_id", childId);
                scheduled.Parameters.AddWithValue("@queue", routing.Queue);
                scheduled.Parameters.AddWithValue("@priority", routing.Priority);
                scheduled.Parameters.AddWithValue("@scheduled_at", due);
                await scheduled.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            await MakeDueAsync(session, routing, discardOnConflict: false, cancellationToken).ConfigureAwait(false);
        }

        protected override async Task<BatchCounters?> CountInBatchAsync(long batchId, int succeeded, int failed, int discarded, CancellationToken cancellationToken)
        {
            await using var update = session.Command(WorkflowsSql.BatchCount);
            update.Parameters.AddWithValue("@batch_id", batchId);
            update.Parameters.AddWithValue("@succeeded", succeeded);
            update.Parameters.AddWithValue("@failed", failed);
            update.Parameters.AddWithValue("@discarded", discarded);
            await using var r = await update.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? ReadCounters(r) : null;
        }

        protected override async Task<bool> MarkBatchCompletedAsync(long batchId, bool allSucceeded, CancellationToken cancellationToken)
        {
            await using var update = session.Command(WorkflowsSql.BatchComplete);
            update.Parameters.AddWithValue("@batch_id", batchId);
            update.Parameters.AddWithValue("@all", allSucceeded);
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }

        protected override async Task<bool> MarkBatchSucceededAsync(long batchId, CancellationToken cancellationToken)
        {
            await using var update = session.Command(WorkflowsSql.BatchSucceed);
            update.Parameters.AddWithValue("@batch_id", batchId);
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }

        protected override async Task EnqueueCallbacksAsync(long batchId, IReadOnlyList<BatchEvent> events, CancellationToken cancellationToken)
        {
            foreach (var on in events)
            {
                var due = new List<(long Id, NewJob Job)>();
                await using (var select = session.Command(WorkflowsSql.CallbacksDue))
                {
                    select.Parameters.AddWithValue("@batch_id", batchId);
                    select.Parameters.AddWithValue("@on_event", WorkflowSteps.EventName(on));
                    await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        due.Add((r.GetInt64(0), WorkflowSteps.CallbackFromJson(r.GetString(1))));
                    }
                }

                foreach (var (id, job) in due)
                {
                    var jobId = (await InsertJobsAsync(session, [job], cancellationToken).ConfigureAwait(false))[0];
                    await using var record = session.Command(WorkflowsSql.CallbackEnqueued);
                    record.Parameters.AddWithValue("@id", id);
                    record.Parameters.AddWithValue("@job_id", jobId);
                    await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }

        protected override async Task<ContinueWhen?> MarkParentAsync(long parentId, CancellationToken cancellationToken)
        {
            await using var mark = session.Command(WorkflowsSql.ParentMark);
            mark.Parameters.AddWithValue("@job_id", parentId);
            await using var r = await mark.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw NoSuchParent(parentId);
            }

            return OutcomeOf(r.GetValue(0));
        }

        protected override async Task InsertEdgeAsync(long parentId, long childId, ContinueWhen waitOn, UnmetPolicy onUnmet, ContinueWhen? outcome, CancellationToken cancellationToken)
        {
            await using var insert = session.Command(WorkflowsSql.EdgeInsert);
            insert.Parameters.AddWithValue("@parent_id", parentId);
            insert.Parameters.AddWithValue("@job_id", childId);
            insert.Parameters.AddWithValue("@wait_on", (int)waitOn);
            insert.Parameters.AddWithValue("@on_unmet", (int)onUnmet);
            insert.Parameters.AddWithValue("@outcome", outcome is { } o ? (int)o : DBNull.Value);
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        private static BatchCounters ReadCounters(MySqlDataReader r)
            => new(r.GetInt64(0), r.GetInt64(1), Flag(r, 2), Flag(r, 3), r.IsDBNull(4) ? null : r.GetInt64(4));
    }
}

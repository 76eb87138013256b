using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<int> RecurringTasksSyncAsync(RecurringTasksSyncParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Tasks);
        var tasks = parameters.Tasks;
        var keys = tasks.Select(t => t.Key).ToArray();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (tasks.Count > 0)
        {
            await using var upsert = new NpgsqlCommand(RecurringSql.StaticUpsert, connection, transaction);
            var p = upsert.Parameters;
            p.Add(TextArray("keys", keys));
            p.Add(TextArray("kinds", tasks.Select(t => (string?)t.Kind)));
            p.Add(TextArray("args", tasks.Select(t => (string?)t.Args)));
            p.Add(TextArray("schedules", tasks.Select(t => (string?)t.Schedule)));
            p.Add(TextArray("time_zones", tasks.Select(t => t.TimeZone)));
            p.Add(TextArray("queues", tasks.Select(t => t.Queue)));
            p.Add(IntArray("priorities", tasks.Select(t => t.Priority)));
            p.Add(IntArray("max_attempts", tasks.Select(t => t.MaxAttempts)));
            p.Add(TextArray("catch_ups", tasks.Select(t => (string?)RecurringCatchUpText.ToText(t.CatchUp))));
            p.Add(IntArray("catch_up_limits", tasks.Select(t => (int?)t.CatchUpLimit)));
            p.Add(TextArray("descriptions", tasks.Select(t => t.Description)));
            p.Add(Now(parameters.Now));
            await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        int deleted;
        await using (var delete = new NpgsqlCommand(RecurringSql.StaticDeleteMissing, connection, transaction))
        {
            delete.Parameters.Add(TextArray("keys", keys));
            deleted = await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return deleted;
    }

    /// <inheritdoc />
    public async Task<bool> RecurringTaskUpsertAsync(RecurringTaskUpsertParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var task = parameters.Task;
        ArgumentNullException.ThrowIfNull(task);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RecurringSql.DynamicUpsert, connection);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string>("key", NpgsqlDbType.Text) { TypedValue = task.Key });
        p.Add(new NpgsqlParameter<string>("kind", NpgsqlDbType.Text) { TypedValue = task.Kind });
        p.Add(new NpgsqlParameter<string>("args", NpgsqlDbType.Text) { TypedValue = task.Args });
        p.Add(new NpgsqlParameter<string>("schedule", NpgsqlDbType.Text) { TypedValue = task.Schedule });
        p.Add(new NpgsqlParameter("time_zone", NpgsqlDbType.Text) { Value = (object?)task.TimeZone ?? DBNull.Value });
        p.Add(new NpgsqlParameter("queue", NpgsqlDbType.Text) { Value = (object?)task.Queue ?? DBNull.Value });
        p.Add(new NpgsqlParameter("priority", NpgsqlDbType.Integer) { Value = (object?)task.Priority ?? DBNull.Value });
        p.Add(new NpgsqlParameter("max_attempts", NpgsqlDbType.Integer) { Value = (object?)task.MaxAttempts ?? DBNull.Value });
        p.Add(new NpgsqlParameter<string>("catch_up", NpgsqlDbType.Text) { TypedValue = RecurringCatchUpText.ToText(task.CatchUp) });
        p.Add(new NpgsqlParameter<int>("catch_up_limit", NpgsqlDbType.Integer) { TypedValue = task.CatchUpLimit });
        p.Add(new NpgsqlParameter("description", NpgsqlDbType.Text) { Value = (object?)task.Description ?? DBNull.Value });
        p.Add(Now(parameters.Now));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async Task<bool> RecurringTaskDeleteAsync(RecurringTaskDeleteParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RecurringSql.DynamicDelete, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("key", NpgsqlDbType.Text) { TypedValue = parameters.Key });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RecurringTaskInfo>> RecurringTasksListAsync(RecurringTasksListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(RecurringSql.TasksList, connection);
        command.Parameters.Add(new NpgsqlParameter("key", NpgsqlDbType.Text) { Value = (object?)parameters.Key ?? DBNull.Value });
        var tasks = new List<RecurringTaskInfo>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var task = new RecurringTask(
                Key: reader.GetString(0),
                Kind: reader.GetString(1),
                Args: reader.GetString(2),
                Schedule: reader.GetString(3),
                TimeZone: reader.IsDBNull(4) ? null : reader.GetString(4),
                Queue: reader.IsDBNull(5) ? null : reader.GetString(5),
                Priority: reader.IsDBNull(6) ? null : reader.GetInt32(6),
                MaxAttempts: reader.IsDBNull(7) ? null : reader.GetInt32(7),
                CatchUp: RecurringCatchUpText.Parse(reader.GetString(8)),
                CatchUpLimit: reader.GetInt32(9),
                Static: reader.GetBoolean(10),
                Description: reader.IsDBNull(11) ? null : reader.GetString(11));
            tasks.Add(new RecurringTaskInfo(task, NullableTime(reader, 12), reader.IsDBNull(13) ? null : reader.GetInt64(13)));
        }

        return tasks;
    }

    /// <inheritdoc />
    public async Task<long?> RecurringEnqueueAsync(RecurringEnqueueParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Job);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        long executionId;
        await using (var record = new NpgsqlCommand(RecurringSql.ExecutionInsert, connection, transaction))
        {
            record.Parameters.Add(new NpgsqlParameter<string>("task_key", NpgsqlDbType.Text) { TypedValue = parameters.TaskKey });
            record.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("run_at", NpgsqlDbType.TimestampTz) { TypedValue = parameters.RunAt.ToUniversalTime() });
            record.Parameters.Add(Now(parameters.Now));
            if (await record.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not long id)
            {
                await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                return null; // Another scheduler enqueued this run already.
            }

            executionId = id;
        }

        // The job goes through the one insert path (ready or scheduled routing, NOTIFY on commit).
        var jobIds = await JobsInsertAsync(new JobsInsertParams([parameters.Job], parameters.Now, connection, transaction), cancellationToken).ConfigureAwait(false);
        await using (var link = new NpgsqlCommand(RecurringSql.ExecutionLinkJob, connection, transaction))
        {
            link.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobIds[0] });
            link.Parameters.Add(new NpgsqlParameter<long>("id", NpgsqlDbType.Bigint) { TypedValue = executionId });
            await link.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return jobIds[0];
    }

    private static NpgsqlParameter TextArray(string name, IEnumerable<string?> values)
        => new(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = values.ToArray() };

    private static NpgsqlParameter IntArray(string name, IEnumerable<int?> values)
        => new(name, NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = values.ToArray() };
}

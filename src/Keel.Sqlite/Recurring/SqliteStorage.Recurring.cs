using System.Globalization;
using System.Text.Json;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public async Task<int> RecurringTasksSyncAsync(RecurringTasksSyncParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Tasks);
        return await WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                foreach (var task in parameters.Tasks)
                {
                    await UpsertTaskAsync(connection, transaction, task with { Static = true }, now, cancellationToken);
                }

                await using var delete = Command(connection, transaction, RecurringSql.StaticDeleteMissing);
                delete.Parameters.AddWithValue("@keys", JsonSerializer.Serialize(parameters.Tasks.Select(t => t.Key).ToArray()));
                return await delete.ExecuteNonQueryAsync(cancellationToken);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> RecurringTaskUpsertAsync(RecurringTaskUpsertParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Task);
        return await WriteAsync(
            async (connection, transaction) => await UpsertTaskAsync(connection, transaction, parameters.Task with { Static = false }, Micros(parameters.Now), cancellationToken) > 0,
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> RecurringTaskDeleteAsync(RecurringTaskDeleteParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await WriteAsync(
            async (connection, transaction) =>
            {
                await using var delete = Command(connection, transaction, RecurringSql.DynamicDelete);
                delete.Parameters.AddWithValue("@key", parameters.Key);
                return await delete.ExecuteNonQueryAsync(cancellationToken) > 0;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RecurringTaskInfo>> RecurringTasksListAsync(RecurringTasksListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = Command(connection, null, RecurringSql.TasksList);
        command.Parameters.AddWithValue("@key", (object?)parameters.Key ?? DBNull.Value);
        var tasks = new List<RecurringTaskInfo>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
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
                Static: reader.GetInt64(10) != 0,
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
        return await WriteAsync(
            async (connection, transaction) =>
            {
                long executionId;
                await using (var record = Command(connection, transaction, RecurringSql.ExecutionInsert))
                {
                    record.Parameters.AddWithValue("@task_key", parameters.TaskKey);
                    record.Parameters.AddWithValue("@run_at", TimeEncoding.ToMicros(parameters.RunAt));
                    record.Parameters.AddWithValue("@now", Micros(parameters.Now));
                    if (await record.ExecuteScalarAsync(cancellationToken) is not { } id)
                    {
                        return (long?)null; // Another scheduler enqueued this run already.
                    }

                    executionId = Convert.ToInt64(id, CultureInfo.InvariantCulture);
                }

                var jobIds = await InsertJobsAsync(connection, transaction, new JobsInsertParams([parameters.Job], parameters.Now), Micros(parameters.Now), cancellationToken);
                await using var link = Command(connection, transaction, RecurringSql.ExecutionLinkJob);
                link.Parameters.AddWithValue("@job_id", jobIds[0]);
                link.Parameters.AddWithValue("@id", executionId);
                await link.ExecuteNonQueryAsync(cancellationToken);
                return jobIds[0];
            },
            cancellationToken);
    }

    private static async Task<int> UpsertTaskAsync(SqliteConnection connection, SqliteTransaction transaction, RecurringTask task, long now, CancellationToken cancellationToken)
    {
        await using var upsert = Command(connection, transaction, task.Static ? RecurringSql.StaticUpsert : RecurringSql.DynamicUpsert);
        var p = upsert.Parameters;
        p.AddWithValue("@key", task.Key);
        p.AddWithValue("@kind", task.Kind);
        p.AddWithValue("@args", task.Args);
        p.AddWithValue("@schedule", task.Schedule);
        p.AddWithValue("@time_zone", (object?)task.TimeZone ?? DBNull.Value);
        p.AddWithValue("@queue", (object?)task.Queue ?? DBNull.Value);
        p.AddWithValue("@priority", (object?)task.Priority ?? DBNull.Value);
        p.AddWithValue("@max_attempts", (object?)task.MaxAttempts ?? DBNull.Value);
        p.AddWithValue("@catch_up", RecurringCatchUpText.ToText(task.CatchUp));
        p.AddWithValue("@catch_up_limit", task.CatchUpLimit);
        p.AddWithValue("@static", task.Static ? 1 : 0);
        p.AddWithValue("@description", (object?)task.Description ?? DBNull.Value);
        p.AddWithValue("@now", now);
        return await upsert.ExecuteNonQueryAsync(cancellationToken);
    }
}

using System.Globalization;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>Recurring tasks (static and dynamic) and their at-most-once runs.</summary>
public sealed partial class MySqlStorage
{
    /// <inheritdoc />
    public async Task<int> RecurringTasksSyncAsync(RecurringTasksSyncParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Tasks);
        return await WriteAsync(
            parameters.Now,
            async session =>
            {
                foreach (var task in parameters.Tasks)
                {
                    await UpsertTaskAsync(session, task with { Static = true }, cancellationToken).ConfigureAwait(false);
                }

                var keys = parameters.Tasks.Select((_, i) => "@k" + i.ToString(CultureInfo.InvariantCulture)).ToList();
                await using var delete = session.Command(RecurringSql.StaticDeleteMissing(keys));
                for (var i = 0; i < keys.Count; i++)
                {
                    delete.Parameters.AddWithValue(keys[i], parameters.Tasks[i].Key);
                }

                return await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> RecurringTaskUpsertAsync(RecurringTaskUpsertParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Task);
        return await WriteAsync(
            parameters.Now,
            async session =>
            {
                // A static task keeps its key: MariaDB's upsert has no WHERE, so the task is locked and looked at first.
                await using (var select = session.Command(RecurringSql.TaskLock))
                {
                    select.Parameters.AddWithValue("@key", parameters.Task.Key);
                    if (await select.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is { } existing and not DBNull
                        && Convert.ToInt64(existing, CultureInfo.InvariantCulture) != 0)
                    {
                        return false;
                    }
                }

                await UpsertTaskAsync(session, parameters.Task with { Static = false }, cancellationToken).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<bool> RecurringTaskDeleteAsync(RecurringTaskDeleteParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await WriteAsync(
            null,
            async session =>
            {
                await using var delete = session.Command(RecurringSql.DynamicDelete);
                delete.Parameters.AddWithValue("@key", parameters.Key);
                return await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<RecurringTaskInfo>> RecurringTasksListAsync(RecurringTasksListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return await ReadAsync<IReadOnlyList<RecurringTaskInfo>>(
            null,
            async session =>
            {
                await using var command = session.Command(RecurringSql.TasksList);
                command.Parameters.AddWithValue("@key", (object?)parameters.Key ?? DBNull.Value);
                var tasks = new List<RecurringTaskInfo>();
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var task = new RecurringTask(
                        Key: reader.GetString(0),
                        Kind: reader.GetString(1),
                        Args: reader.GetString(2),
                        Schedule: reader.GetString(3),
                        TimeZone: NullableString(reader, 4),
                        Queue: NullableString(reader, 5),
                        Priority: reader.IsDBNull(6) ? null : reader.GetInt32(6),
                        MaxAttempts: reader.IsDBNull(7) ? null : reader.GetInt32(7),
                        CatchUp: RecurringCatchUpText.Parse(reader.GetString(8)),
                        CatchUpLimit: reader.GetInt32(9),
                        Static: Flag(reader, 10),
                        Description: NullableString(reader, 11));
                    tasks.Add(new RecurringTaskInfo(task, NullableTime(reader, 12), reader.IsDBNull(13) ? null : reader.GetInt64(13)));
                }

                return tasks;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<long?> RecurringEnqueueAsync(RecurringEnqueueParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Job);
        return await WriteAsync(
            parameters.Now,
            async session =>
            {
                long executionId;
                await using (var record = session.Command(RecurringSql.ExecutionInsert))
                {
                    record.Parameters.AddWithValue("@task_key", parameters.TaskKey);
                    record.Parameters.AddWithValue("@run_at", TimeEncoding.ToMicros(parameters.RunAt));
                    if (await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
                    {
                        return (long?)null; // Another scheduler enqueued this run already.
                    }

                    executionId = record.LastInsertedId;
                }

                var jobIds = await InsertJobsAsync(session, [parameters.Job], cancellationToken).ConfigureAwait(false);
                await using var link = session.Command(RecurringSql.ExecutionLinkJob);
                link.Parameters.AddWithValue("@job_id", jobIds[0]);
                link.Parameters.AddWithValue("@id", executionId);
                await link.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                return jobIds[0];
            },
            cancellationToken).ConfigureAwait(false);
    }

    private static async Task UpsertTaskAsync(Session session, RecurringTask task, CancellationToken cancellationToken)
    {
        await using var upsert = session.Command(task.Static ? RecurringSql.StaticUpsert : RecurringSql.DynamicUpsert);
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
        await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

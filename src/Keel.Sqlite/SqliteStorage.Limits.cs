using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>
/// Concurrency permits and uniqueness keys. Every caller already holds the <c>BEGIN IMMEDIATE</c> write lock, so
/// acquiring, releasing and promoting can never interleave with another process's.
/// </summary>
public sealed partial class SqliteStorage
{
    private const string RoutingSelect = "SELECT queue, priority, concurrency_key, concurrency_limit, concurrency_duration_ms FROM keel_jobs WHERE id = @job_id";

    private const string SemaphoreSelect = "SELECT value, limit_value FROM keel_semaphores WHERE key = @key";

    private const string SemaphoreInsert = """
        INSERT INTO keel_semaphores (key, value, limit_value, expires_at, created_at, updated_at)
        VALUES (@key, @value, @limit, @expires_at, @now, @now)
        """;

    private const string SemaphoreUpdate = "UPDATE keel_semaphores SET value = @value, limit_value = @limit, expires_at = @expires_at, updated_at = @now WHERE key = @key";

    private const string BlockedInsert = """
        INSERT INTO keel_blocked_executions (job_id, queue, priority, concurrency_key, expires_at, created_at)
        VALUES (@job_id, @queue, @priority, @key, @expires_at, @now)
        """;

    private const string BlockedNext = """
        DELETE FROM keel_blocked_executions WHERE job_id = (
            SELECT job_id FROM keel_blocked_executions WHERE concurrency_key = @key ORDER BY priority, job_id LIMIT 1)
        RETURNING job_id, queue, priority
        """;

    private const string JobDiscard = "UPDATE keel_jobs SET discarded_at = @now WHERE id = @job_id";

    private const string UniqueKeyFree = "DELETE FROM keel_unique_keys WHERE job_id = @job_id";

    private const string UniqueKeyOwner = "SELECT job_id FROM keel_unique_keys WHERE key = @key";

    private const string UniqueKeyTake = "INSERT OR IGNORE INTO keel_unique_keys (key, job_id) VALUES (@key, @job_id)";

    private enum Route
    {
        Ready,
        Blocked,
        Discarded,
    }

    /// <summary>What deciding a job's next row needs: where it goes and its concurrency limit, if any.</summary>
    private sealed record JobRouting(long JobId, string Queue, long Priority, string? Key, int Limit, long DurationMicros);

    private static async Task<JobRouting> RoutingAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, RoutingSelect);
        select.Parameters.AddWithValue("@job_id", jobId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        return new JobRouting(
            jobId,
            r.GetString(0),
            r.GetInt64(1),
            r.IsDBNull(2) ? null : r.GetString(2),
            r.IsDBNull(3) ? 1 : r.GetInt32(3),
            r.IsDBNull(4) ? 0 : r.GetInt64(4) * 1000);
    }

    /// <summary>A job becomes due: ready when it needs no permit or gets one; otherwise blocked (or discarded when asked).</summary>
    private static async Task<Route> MakeDueAsync(SqliteConnection connection, SqliteTransaction transaction, JobRouting job, bool discardOnConflict, long now, CancellationToken cancellationToken)
    {
        if (job.Key is null || await TryAcquireAsync(connection, transaction, job, now, cancellationToken))
        {
            await InsertReadyAsync(connection, transaction, job.JobId, job.Queue, job.Priority, now, cancellationToken);
            return Route.Ready;
        }

        if (discardOnConflict)
        {
            await ExecuteForJobAsync(connection, transaction, JobDiscard, job.JobId, now, cancellationToken);
            await ExecuteForJobAsync(connection, transaction, UniqueKeyFree, job.JobId, now, cancellationToken);
            return Route.Discarded;
        }

        await using var blocked = Command(connection, transaction, BlockedInsert);
        blocked.Parameters.AddWithValue("@job_id", job.JobId);
        blocked.Parameters.AddWithValue("@queue", job.Queue);
        blocked.Parameters.AddWithValue("@priority", job.Priority);
        blocked.Parameters.AddWithValue("@key", job.Key);
        blocked.Parameters.AddWithValue("@expires_at", now + job.DurationMicros);
        blocked.Parameters.AddWithValue("@now", now);
        await blocked.ExecuteNonQueryAsync(cancellationToken);
        return Route.Blocked;
    }

    private static async Task<bool> TryAcquireAsync(SqliteConnection connection, SqliteTransaction transaction, JobRouting job, long now, CancellationToken cancellationToken)
    {
        var (value, _) = await SemaphoreAsync(connection, transaction, job.Key!, cancellationToken);
        if (value is null)
        {
            await WriteSemaphoreAsync(connection, transaction, SemaphoreInsert, job.Key!, job.Limit - 1, job.Limit, now + job.DurationMicros, now, cancellationToken);
            return true;
        }

        if (value <= 0)
        {
            return false;
        }

        await WriteSemaphoreAsync(connection, transaction, SemaphoreUpdate, job.Key!, value.Value - 1, job.Limit, now + job.DurationMicros, now, cancellationToken);
        return true;
    }

    /// <summary>
    /// A holder gave its permit back: one more free (never above the limit, so a double release creates nothing),
    /// then the next blocked jobs of the key, by priority, take the free permits. Returns how many were promoted.
    /// </summary>
    private static async Task<int> ReleasePermitAsync(SqliteConnection connection, SqliteTransaction transaction, JobRouting holder, long now, CancellationToken cancellationToken)
    {
        var (value, limit) = await SemaphoreAsync(connection, transaction, holder.Key!, cancellationToken);
        if (value is null)
        {
            return 0; // Expired and removed: maintenance recomputes the permits from the jobs themselves.
        }

        var free = Math.Min(limit, value.Value + 1);
        var promoted = await PromoteAsync(connection, transaction, holder.Key!, free, now, cancellationToken);
        await WriteSemaphoreAsync(connection, transaction, SemaphoreUpdate, holder.Key!, free - promoted, limit, now + holder.DurationMicros, now, cancellationToken);
        return promoted;
    }

    private static async Task<int> PromoteAsync(SqliteConnection connection, SqliteTransaction transaction, string key, int free, long now, CancellationToken cancellationToken)
    {
        var promoted = 0;
        while (promoted < free)
        {
            await using var next = Command(connection, transaction, BlockedNext);
            next.Parameters.AddWithValue("@key", key);
            await using var r = await next.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken))
            {
                break;
            }

            var (jobId, queue, priority) = (r.GetInt64(0), r.GetString(1), r.GetInt64(2));
            await r.DisposeAsync();
            await InsertReadyAsync(connection, transaction, jobId, queue, priority, now, cancellationToken);
            promoted++;
        }

        return promoted;
    }

    private static async Task<(int? Value, int Limit)> SemaphoreAsync(SqliteConnection connection, SqliteTransaction transaction, string key, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, SemaphoreSelect);
        select.Parameters.AddWithValue("@key", key);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? (r.GetInt32(0), r.GetInt32(1)) : (null, 0);
    }

    private static async Task WriteSemaphoreAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, string key, int value, int limit, long expiresAt, long now, CancellationToken cancellationToken)
    {
        await using var write = Command(connection, transaction, sql);
        write.Parameters.AddWithValue("@key", key);
        write.Parameters.AddWithValue("@value", value);
        write.Parameters.AddWithValue("@limit", limit);
        write.Parameters.AddWithValue("@expires_at", expiresAt);
        write.Parameters.AddWithValue("@now", now);
        await write.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// A job left ready/claimed for good (finished, failed, discarded) or for a retry: free its uniqueness key
    /// (unless it is only waiting for a retry) and its permit.
    /// </summary>
    private static async Task LeaveAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, bool terminal, long now, CancellationToken cancellationToken)
    {
        if (terminal)
        {
            await ExecuteForJobAsync(connection, transaction, UniqueKeyFree, jobId, now, cancellationToken);
        }

        var routing = await RoutingAsync(connection, transaction, jobId, cancellationToken);
        if (routing.Key is not null)
        {
            await ReleasePermitAsync(connection, transaction, routing, now, cancellationToken);
        }
    }

    private static async Task ExecuteForJobAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, long jobId, long now, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        command.Parameters.AddWithValue("@job_id", jobId);
        if (sql.Contains("@now", StringComparison.Ordinal))
        {
            command.Parameters.AddWithValue("@now", now);
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}

using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>
/// Concurrency limits: taking a permit when a job becomes due (else it is blocked), giving it back and promoting the
/// next blocked job when it leaves ready or claimed, and repairing semaphores. Every caller already holds the
/// <c>BEGIN IMMEDIATE</c> write lock, so acquiring, releasing and promoting can never interleave with another process's.
/// </summary>
public sealed partial class SqliteStorage
{
    /// <inheritdoc />
    public Task<int> ConcurrencyMaintainAsync(ConcurrencyMaintainParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var keys = new List<string>();
                await using (var select = Command(connection, transaction, ConcurrencySql.ConcurrencyMaintainKeys))
                {
                    select.Parameters.AddWithValue("@now", now);
                    select.Parameters.AddWithValue("@limit", parameters.BatchSize);
                    await using var r = await select.ExecuteReaderAsync(cancellationToken);
                    while (await r.ReadAsync(cancellationToken))
                    {
                        keys.Add(r.GetString(0));
                    }
                }

                var promoted = 0;
                foreach (var key in keys)
                {
                    promoted += await RepairKeyAsync(connection, transaction, key, now, cancellationToken);
                }

                return promoted;
            },
            cancellationToken);
    }

    /// <summary>
    /// Recomputes a key's free permits from the jobs that really hold one (ready or claimed), so a lost release can
    /// only ever delay a blocked job, never let the limit be exceeded; then promotes into the free permits.
    /// </summary>
    private static async Task<int> RepairKeyAsync(SqliteConnection connection, SqliteTransaction transaction, string key, long now, CancellationToken cancellationToken)
    {
        long holders;
        int limit;
        long durationMicros;
        await using (var count = Command(connection, transaction, ConcurrencySql.SemaphoreHolders))
        {
            count.Parameters.AddWithValue("@key", key);
            await using var r = await count.ExecuteReaderAsync(cancellationToken);
            await r.ReadAsync(cancellationToken);
            holders = r.GetInt64(0);
        }

        await using (var terms = Command(connection, transaction, ConcurrencySql.ConcurrencyKeyTerms))
        {
            terms.Parameters.AddWithValue("@key", key);
            await using var r = await terms.ExecuteReaderAsync(cancellationToken);
            await r.ReadAsync(cancellationToken);
            limit = r.IsDBNull(0) ? 1 : r.GetInt32(0);
            durationMicros = (r.IsDBNull(1) ? 900_000 : r.GetInt64(1)) * 1000;
        }

        var (existing, storedLimit) = await SemaphoreAsync(connection, transaction, key, cancellationToken);
        if (existing is not null)
        {
            limit = storedLimit;
        }

        var free = (int)Math.Max(0, limit - holders);
        var promoted = await PromoteAsync(connection, transaction, key, free, now, cancellationToken);
        await WriteSemaphoreAsync(connection, transaction, existing is null ? ConcurrencySql.SemaphoreInsert : ConcurrencySql.SemaphoreUpdate, key, free - promoted, limit, now + durationMicros, now, cancellationToken);
        await using (var refresh = Command(connection, transaction, ConcurrencySql.BlockedRefresh))
        {
            refresh.Parameters.AddWithValue("@key", key);
            refresh.Parameters.AddWithValue("@expires_at", now + durationMicros);
            await refresh.ExecuteNonQueryAsync(cancellationToken);
        }

        return promoted;
    }

    private enum Route
    {
        Ready,
        Blocked,
        Discarded,
    }

    /// <summary>What deciding a job's next row needs: where it goes and its concurrency limit, if any.</summary>
    private sealed record JobRouting(long JobId, string Queue, long Priority, string? Key, int Limit, long DurationMicros)
    {
        /// <summary>The job's workflow flags, when read from its row: jobs wait on it, its batch.</summary>
        public SettledJob Workflow { get; init; }
    }

    private static async Task<JobRouting> RoutingAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, CancellationToken cancellationToken)
    {
        await using var select = Command(connection, transaction, ConcurrencySql.JobRouting);
        select.Parameters.AddWithValue("@job_id", jobId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        return new JobRouting(
            jobId,
            r.GetString(0),
            r.GetInt64(1),
            r.IsDBNull(2) ? null : r.GetString(2),
            r.IsDBNull(3) ? 1 : r.GetInt32(3),
            r.IsDBNull(4) ? 0 : r.GetInt64(4) * 1000)
        {
            Workflow = new SettledJob(jobId, ContinueWhen.Failed, !r.IsDBNull(5), r.IsDBNull(6) ? null : r.GetInt64(6)),
        };
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
            await ExecuteForJobAsync(connection, transaction, JobsSql.JobDiscard, job.JobId, now, cancellationToken);
            await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, job.JobId, now, cancellationToken);
            return Route.Discarded;
        }

        await using var blocked = Command(connection, transaction, ConcurrencySql.BlockedInsert);
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
            await WriteSemaphoreAsync(connection, transaction, ConcurrencySql.SemaphoreInsert, job.Key!, job.Limit - 1, job.Limit, now + job.DurationMicros, now, cancellationToken);
            return true;
        }

        if (value <= 0)
        {
            return false;
        }

        await WriteSemaphoreAsync(connection, transaction, ConcurrencySql.SemaphoreUpdate, job.Key!, value.Value - 1, job.Limit, now + job.DurationMicros, now, cancellationToken);
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
        await WriteSemaphoreAsync(connection, transaction, ConcurrencySql.SemaphoreUpdate, holder.Key!, free - promoted, limit, now + holder.DurationMicros, now, cancellationToken);
        return promoted;
    }

    private static async Task<int> PromoteAsync(SqliteConnection connection, SqliteTransaction transaction, string key, int free, long now, CancellationToken cancellationToken)
    {
        var promoted = 0;
        while (promoted < free)
        {
            await using var next = Command(connection, transaction, ConcurrencySql.BlockedNext);
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
        await using var select = Command(connection, transaction, ConcurrencySql.SemaphoreSelect);
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
    /// A job left ready/claimed for good (failed) or for a retry: free its uniqueness key (unless it is only waiting for
    /// a retry) and its permit; a job failed for good settles its workflow.
    /// </summary>
    private static Task LeaveAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, bool terminal, long now, CancellationToken cancellationToken)
        => LeaveAsync(connection, transaction, jobId, terminal, ContinueWhen.Failed, now, cancellationToken);

    /// <summary>A job whose run was cancelled left its claim discarded: its key and permit go, its workflow settles as discarded.</summary>
    private static Task LeaveCancelledAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, long now, CancellationToken cancellationToken)
        => LeaveAsync(connection, transaction, jobId, terminal: true, ContinueWhen.Discarded, now, cancellationToken);

    private static async Task LeaveAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, bool terminal, ContinueWhen outcome, long now, CancellationToken cancellationToken)
    {
        if (terminal)
        {
            await ExecuteForJobAsync(connection, transaction, JobsSql.UniqueKeyFree, jobId, now, cancellationToken);
        }

        var routing = await RoutingAsync(connection, transaction, jobId, cancellationToken);
        if (routing.Key is not null)
        {
            await ReleasePermitAsync(connection, transaction, routing, now, cancellationToken);
        }

        // A terminal leave is a failure for good, or a cancelled run's discard: its children and batch advance.
        if (terminal && !routing.Workflow.IsPlain)
        {
            await SettleAsync(connection, transaction, [routing.Workflow with { Outcome = outcome }], now, cancellationToken);
        }
    }
}

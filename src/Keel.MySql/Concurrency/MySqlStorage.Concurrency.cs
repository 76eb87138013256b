using System.Globalization;
using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>
/// Concurrency limits: taking a permit when a job becomes due (else it is blocked), giving it back and promoting the
/// next blocked job when it leaves ready or claimed, and repairing semaphores. Each step on a key first locks the key's
/// semaphore row, so two processes never interleave on one key.
/// </summary>
public sealed partial class MySqlStorage
{
    /// <summary>A concurrency duration when a job has none stored: 15 minutes, in microseconds.</summary>
    private const long DefaultDurationMicros = 900_000L * 1000;

    /// <inheritdoc />
    /// <remarks>Each key is repaired in its own transaction, its semaphore row locked first.</remarks>
    public async Task<int> ConcurrencyMaintainAsync(ConcurrencyMaintainParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.BatchSize <= 0)
        {
            return 0;
        }

        var keys = await ReadAsync(
            parameters.Now,
            async session =>
            {
                var found = new List<string>();
                await using var select = session.Command(ConcurrencySql.ConcurrencyMaintainKeys);
                select.Parameters.AddWithValue("@limit", parameters.BatchSize);
                await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    found.Add(r.GetString(0));
                }

                return found;
            },
            cancellationToken).ConfigureAwait(false);

        var promoted = 0;
        foreach (var key in keys)
        {
            promoted += await WriteAsync(parameters.Now, session => RepairKeyAsync(session, key, cancellationToken), cancellationToken).ConfigureAwait(false);
        }

        return promoted;
    }

    /// <summary>
    /// Recomputes a key's free permits from the jobs that really hold one (ready or claimed), so a lost release can
    /// only ever delay a blocked job, never let the limit be exceeded; then promotes into the free permits.
    /// </summary>
    private static async Task<int> RepairKeyAsync(Session session, string key, CancellationToken cancellationToken)
    {
        var (existing, storedLimit) = await SemaphoreAsync(session, key, cancellationToken).ConfigureAwait(false);
        long holders;
        await using (var count = session.Command(ConcurrencySql.SemaphoreHolders))
        {
            count.Parameters.AddWithValue("@key", key);
            holders = Convert.ToInt64(await count.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }

        int limit;
        long durationMicros;
        await using (var terms = session.Command(ConcurrencySql.ConcurrencyKeyTerms))
        {
            terms.Parameters.AddWithValue("@key", key);
            await using var r = await terms.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await r.ReadAsync(cancellationToken).ConfigureAwait(false);
            limit = r.IsDBNull(0) ? 1 : r.GetInt32(0);
            durationMicros = r.IsDBNull(1) ? DefaultDurationMicros : r.GetInt64(1) * 1000;
        }

        if (existing is not null)
        {
            limit = storedLimit;
        }
        else if (!await CreateSemaphoreAsync(session, key, 0, limit, durationMicros, cancellationToken).ConfigureAwait(false))
        {
            return 0; // Created by another process just now: it is being looked after.
        }

        var free = (int)Math.Max(0, limit - holders);
        var promoted = await PromoteAsync(session, key, free, cancellationToken).ConfigureAwait(false);
        await WriteSemaphoreAsync(session, key, free - promoted, limit, durationMicros, cancellationToken).ConfigureAwait(false);
        await using (var refresh = session.Command(ConcurrencySql.BlockedRefresh))
        {
            refresh.Parameters.AddWithValue("@key", key);
            refresh.Parameters.AddWithValue("@duration", durationMicros);
            await refresh.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
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
        /// <summary>The job's workflow flags, when read from its row (<see cref="RoutingAsync"/>): jobs wait on it, its batch.</summary>
        public SettledJob Workflow { get; init; }
    }

    /// <summary>Reads (queue, priority, key, limit, duration ms) at <paramref name="keyOrdinal"/> … as a routing.</summary>
    private static JobRouting ReadRouting(MySqlDataReader r, long jobId, int keyOrdinal, int queueOrdinal)
        => new(
            jobId,
            r.GetString(queueOrdinal),
            r.GetInt64(queueOrdinal + 1),
            r.IsDBNull(keyOrdinal) ? null : r.GetString(keyOrdinal),
            r.IsDBNull(keyOrdinal + 1) ? 1 : r.GetInt32(keyOrdinal + 1),
            r.IsDBNull(keyOrdinal + 2) ? 0 : r.GetInt64(keyOrdinal + 2) * 1000);

    private static async Task<JobRouting> RoutingAsync(Session session, long jobId, CancellationToken cancellationToken)
    {
        await using var select = session.Command(ConcurrencySql.JobRouting);
        select.Parameters.AddWithValue("@job_id", jobId);
        await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await r.ReadAsync(cancellationToken).ConfigureAwait(false);
        return ReadRouting(r, jobId, keyOrdinal: 2, queueOrdinal: 0) with
        {
            Workflow = new SettledJob(jobId, ContinueWhen.Failed, !r.IsDBNull(5), r.IsDBNull(6) ? null : r.GetInt64(6)),
        };
    }

    /// <summary>A job becomes due: ready when it needs no permit or gets one; otherwise blocked (or discarded when asked).</summary>
    private static async Task<Route> MakeDueAsync(Session session, JobRouting job, bool discardOnConflict, CancellationToken cancellationToken)
    {
        if (job.Key is null || await TryAcquireAsync(session, job, cancellationToken).ConfigureAwait(false))
        {
            await InsertReadyAsync(session, job.JobId, job.Queue, job.Priority, cancellationToken).ConfigureAwait(false);
            return Route.Ready;
        }

        if (discardOnConflict)
        {
            await ExecuteForJobAsync(session, JobsSql.JobDiscard, job.JobId, cancellationToken).ConfigureAwait(false);
            await ExecuteForJobAsync(session, JobsSql.UniqueKeyFree, job.JobId, cancellationToken).ConfigureAwait(false);
            return Route.Discarded;
        }

        await using var blocked = session.Command(ConcurrencySql.BlockedInsert);
        blocked.Parameters.AddWithValue("@job_id", job.JobId);
        blocked.Parameters.AddWithValue("@queue", job.Queue);
        blocked.Parameters.AddWithValue("@priority", job.Priority);
        blocked.Parameters.AddWithValue("@key", job.Key);
        blocked.Parameters.AddWithValue("@duration", job.DurationMicros);
        await blocked.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return Route.Blocked;
    }

    private static async Task<bool> TryAcquireAsync(Session session, JobRouting job, CancellationToken cancellationToken)
    {
        var (value, _) = await SemaphoreAsync(session, job.Key!, cancellationToken).ConfigureAwait(false);
        if (value is null)
        {
            if (await CreateSemaphoreAsync(session, job.Key!, job.Limit - 1, job.Limit, job.DurationMicros, cancellationToken).ConfigureAwait(false))
            {
                return true;
            }

            // Another process created it meanwhile (and has committed): lock and read that one.
            (value, _) = await SemaphoreAsync(session, job.Key!, cancellationToken).ConfigureAwait(false);
            if (value is null)
            {
                return false;
            }
        }

        if (value <= 0)
        {
            return false;
        }

        await WriteSemaphoreAsync(session, job.Key!, value.Value - 1, job.Limit, job.DurationMicros, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// A holder gave its permit back: one more free (never above the limit, so a double release creates nothing),
    /// then the next blocked jobs of the key, by priority, take the free permits. Returns how many were promoted.
    /// </summary>
    private static async Task<int> ReleasePermitAsync(Session session, JobRouting holder, CancellationToken cancellationToken)
    {
        var (value, limit) = await SemaphoreAsync(session, holder.Key!, cancellationToken).ConfigureAwait(false);
        if (value is null)
        {
            return 0; // No semaphore: maintenance recomputes the permits from the jobs themselves.
        }

        var free = Math.Min(limit, value.Value + 1);
        var promoted = await PromoteAsync(session, holder.Key!, free, cancellationToken).ConfigureAwait(false);
        await WriteSemaphoreAsync(session, holder.Key!, free - promoted, limit, holder.DurationMicros, cancellationToken).ConfigureAwait(false);
        return promoted;
    }

    /// <summary>Promotes blocked jobs of a key into the permits its semaphore has free (given back by a completion).</summary>
    private static async Task<int> PromoteIntoFreePermitsAsync(Session session, JobRouting holder, CancellationToken cancellationToken)
    {
        var (value, limit) = await SemaphoreAsync(session, holder.Key!, cancellationToken).ConfigureAwait(false);
        if (value is null)
        {
            return 0;
        }

        var free = Math.Min(limit, value.Value);
        var promoted = await PromoteAsync(session, holder.Key!, free, cancellationToken).ConfigureAwait(false);
        if (promoted > 0)
        {
            await WriteSemaphoreAsync(session, holder.Key!, free - promoted, limit, holder.DurationMicros, cancellationToken).ConfigureAwait(false);
        }

        return promoted;
    }

    private static async Task<int> PromoteAsync(Session session, string key, int free, CancellationToken cancellationToken)
    {
        var promoted = 0;
        while (promoted < free)
        {
            long jobId;
            string queue;
            long priority;
            await using (var next = session.Command(ConcurrencySql.BlockedNext))
            {
                next.Parameters.AddWithValue("@key", key);
                await using var r = await next.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    break;
                }

                (jobId, queue, priority) = (r.GetInt64(0), r.GetString(1), r.GetInt64(2));
            }

            await ExecuteForJobAsync(session, ConcurrencySql.BlockedDelete, jobId, cancellationToken).ConfigureAwait(false);
            await InsertReadyAsync(session, jobId, queue, priority, cancellationToken).ConfigureAwait(false);
            promoted++;
        }

        return promoted;
    }

    private static async Task<(int? Value, int Limit)> SemaphoreAsync(Session session, string key, CancellationToken cancellationToken)
    {
        await using var select = session.Command(ConcurrencySql.SemaphoreSelect);
        select.Parameters.AddWithValue("@key", key);
        await using var r = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await r.ReadAsync(cancellationToken).ConfigureAwait(false) ? (r.GetInt32(0), r.GetInt32(1)) : (null, 0);
    }

    /// <summary>Creates a key's semaphore; false when a concurrent transaction created it first.</summary>
    private static async Task<bool> CreateSemaphoreAsync(Session session, string key, int value, int limit, long durationMicros, CancellationToken cancellationToken)
    {
        await using var insert = session.Command(ConcurrencySql.SemaphoreInsert);
        insert.Parameters.AddWithValue("@key", key);
        insert.Parameters.AddWithValue("@value", value);
        insert.Parameters.AddWithValue("@limit", limit);
        insert.Parameters.AddWithValue("@duration", durationMicros);
        return await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    private static async Task WriteSemaphoreAsync(Session session, string key, int value, int limit, long durationMicros, CancellationToken cancellationToken)
    {
        await using var write = session.Command(ConcurrencySql.SemaphoreUpdate);
        write.Parameters.AddWithValue("@key", key);
        write.Parameters.AddWithValue("@value", value);
        write.Parameters.AddWithValue("@limit", limit);
        write.Parameters.AddWithValue("@duration", durationMicros);
        await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A job left ready/claimed for good (finished, failed, discarded) or for a retry: free its uniqueness key
    /// (unless it is only waiting for a retry) and its permit.
    /// </summary>
    private static Task LeaveAsync(Session session, long jobId, bool terminal, CancellationToken cancellationToken)
        => LeaveAsync(session, jobId, terminal, ContinueWhen.Failed, cancellationToken);

    /// <summary>A job whose run was cancelled left its claim discarded: its key and permit go, its workflow settles as discarded.</summary>
    private static Task LeaveCancelledAsync(Session session, long jobId, CancellationToken cancellationToken)
        => LeaveAsync(session, jobId, terminal: true, ContinueWhen.Discarded, cancellationToken);

    private static async Task LeaveAsync(Session session, long jobId, bool terminal, ContinueWhen outcome, CancellationToken cancellationToken)
    {
        if (terminal)
        {
            await ExecuteForJobAsync(session, JobsSql.UniqueKeyFree, jobId, cancellationToken).ConfigureAwait(false);
        }

        var routing = await RoutingAsync(session, jobId, cancellationToken).ConfigureAwait(false);
        if (routing.Key is not null)
        {
            await ReleasePermitAsync(session, routing, cancellationToken).ConfigureAwait(false);
        }

        // A terminal leave is a failure for good, or a cancelled run's discard: its children and batch advance.
        if (terminal && !routing.Workflow.IsPlain)
        {
            await SettleAsync(session, [routing.Workflow with { Outcome = outcome }], cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteForJobAsync(Session session, string sql, long jobId, CancellationToken cancellationToken)
    {
        await using var command = session.Command(sql);
        command.Parameters.AddWithValue("@job_id", jobId);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>
/// Concurrency limits: taking a permit when a job becomes due (else it is blocked), promoting blocked jobs into the
/// permits a finalizing statement gave back once it committed, and repairing semaphores.
/// </summary>
public sealed partial class PostgreSqlStorage
{
    /// <summary>How many times an insert re-resolves a uniqueness key whose holder keeps changing under it.</summary>
    private const int UniqueResolveAttempts = 10;

    /// <inheritdoc />
    /// <remarks>
    /// Each key is repaired in its own transaction (one round trip): lock (or create) its semaphore row, recount the
    /// jobs holding a permit (ready or claimed), promote blocked jobs into the free permits, refresh the expiry of
    /// the rest, and delete the semaphore when nobody holds or waits for it.
    /// </remarks>
    public async Task<int> ConcurrencyMaintainAsync(ConcurrencyMaintainParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.BatchSize <= 0)
        {
            return 0;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var keys = new List<string>();
        await using (var command = new NpgsqlCommand(ConcurrencySql.ConcurrencyMaintainKeys, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<int>("limit", NpgsqlDbType.Integer) { TypedValue = parameters.BatchSize });
            command.Parameters.Add(Now(parameters.Now));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                keys.Add(reader.GetString(0));
            }
        }

        var promoted = 0;
        foreach (var key in keys)
        {
            // A batch without an explicit transaction is one implicit transaction; each statement still takes a
            // fresh snapshot, so the recount sees whatever committed while the row lock was awaited.
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(KeyCommand(ConcurrencySql.SemaphoreEnsure, key, parameters.Now));
            batch.BatchCommands.Add(KeyCommand(ConcurrencySql.SemaphoreRecount, key, parameters.Now));
            batch.BatchCommands.Add(KeyCommand(ConcurrencySql.BlockedRefresh, key, parameters.Now));
            batch.BatchCommands.Add(KeyCommand(ConcurrencySql.SemaphoreCollect, key, parameters.Now));
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            do
            {
                if (reader.FieldCount == 2 && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    promoted += checked((int)reader.GetInt64(0));
                }
            }
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
        }

        return promoted;
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

    private static NpgsqlBatchCommand KeyCommand(string sql, string key, DateTimeOffset? now)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<string>("key", NpgsqlDbType.Text) { TypedValue = key });
        command.Parameters.Add(Now(now));
        return command;
    }

    /// <summary>Reads a statement's (keys, durations) arrays of permits to give back; null when there are none.</summary>
    private static List<PermitRelease>? ReadReleases(NpgsqlDataReader reader, int keysOrdinal, int durationsOrdinal)
    {
        if (reader.IsDBNull(keysOrdinal))
        {
            return null;
        }

        var keys = reader.GetFieldValue<string[]>(keysOrdinal);
        var durations = reader.GetFieldValue<long[]>(durationsOrdinal);
        var list = new List<PermitRelease>(keys.Length);
        for (var i = 0; i < keys.Length; i++)
        {
            list.Add(new PermitRelease(keys[i], durations[i] > 0 ? durations[i] : null));
        }

        return list;
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

    /// <summary>Inserts one job inside the call's transaction; returns its id, or the id of the job owning its uniqueness key.</summary>
    private static async Task<long> InsertOneAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, NewJob job, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        long id;
        bool owned;
        bool needsAcquire;
        await using (var command = new NpgsqlCommand(PostgreSqlStatements.JobInsertOne, connection, transaction))
        {
            var limited = job.ConcurrencyKey is not null;
            var p = command.Parameters;
            p.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = job.Queue });
            p.Add(new NpgsqlParameter<string>("kind", NpgsqlDbType.Text) { TypedValue = job.Kind });
            p.Add(new NpgsqlParameter<string>("args", NpgsqlDbType.Text) { TypedValue = job.Args });
            p.Add(new NpgsqlParameter<int>("priority", NpgsqlDbType.Integer) { TypedValue = job.Priority });
            p.Add(Time("scheduled_at", job.ScheduledAt));
            p.Add(new NpgsqlParameter<int>("max_attempts", NpgsqlDbType.Integer) { TypedValue = job.MaxAttempts });
            p.Add(new NpgsqlParameter<int>("max_worker_losses", NpgsqlDbType.Integer) { TypedValue = job.MaxWorkerLosses });
            p.Add(Text("concurrency_key", job.ConcurrencyKey));
            p.Add(new NpgsqlParameter("concurrency_limit", NpgsqlDbType.Integer) { Value = limited ? job.ConcurrencyLimit : DBNull.Value });
            p.Add(new NpgsqlParameter("concurrency_duration_ms", NpgsqlDbType.Bigint)
            {
                Value = limited ? Math.Max(1L, (long)Math.Ceiling(job.ConcurrencyDuration.TotalMilliseconds)) : DBNull.Value,
            });
            p.Add(Text("unique_key", job.UniqueKey));
            p.Add(Text("trace_parent", job.TraceParent));
            p.Add(Now(now));

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
                await using var command = new NpgsqlCommand(PostgreSqlStatements.JobUniqueResolve, connection, transaction);
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

    /// <summary>
    /// Takes a permit for each job (in order, in one round trip, inside the caller's transaction): ready when one is
    /// free, otherwise blocked, or discarded with <paramref name="discard"/>.
    /// </summary>
    private static async Task<AcquireOutcome> AcquireAsync(
        NpgsqlConnection connection,
        NpgsqlTransaction transaction,
        IReadOnlyList<long> jobIds,
        bool discard,
        DateTimeOffset? now,
        CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection, transaction);
        foreach (var jobId in jobIds)
        {
            var command = new NpgsqlBatchCommand(ConcurrencySql.JobAcquire);
            command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = jobId });
            command.Parameters.Add(new NpgsqlParameter<bool>("discard", NpgsqlDbType.Boolean) { TypedValue = discard });
            command.Parameters.Add(Now(now));
            batch.BatchCommands.Add(command);
        }

        var ready = 0;
        var blocked = 0;
        var discarded = 0;
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        do
        {
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ready += checked((int)reader.GetInt64(0));
                blocked += checked((int)reader.GetInt64(1));
                discarded += checked((int)reader.GetInt64(2));
            }
        }
        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));

        return new AcquireOutcome(ready, blocked, discarded);
    }

    /// <summary>
    /// Promotes blocked jobs into the permits that a finalizing statement gave back, once it has committed. The
    /// job's new state and the permit count are already durable, so a failure here must not surface as a failure of
    /// that operation (a retry of it would find the claim gone): the blocked jobs then wait for the next release of
    /// their key or for <see cref="ConcurrencyMaintainAsync"/>, which picks up keys whose blocked jobs expired.
    /// </summary>
    private async Task PromoteAfterCommitAsync(IReadOnlyList<PermitRelease> releases, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        try
        {
            await PromoteAsync(releases, now, cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Deliberately swallowed: see the summary; maintenance repairs a lost promotion.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>
    /// For each key that got permits back, one transaction (and one round trip): lock the semaphore row, then — in a
    /// fresh snapshot that sees every blocked job committed by an enqueuer that held the lock (#456) — promote the
    /// key's blocked jobs into its free permits. Returns how many were promoted.
    /// </summary>
    private async Task<int> PromoteAsync(IReadOnlyList<PermitRelease> releases, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        var byKey = new Dictionary<string, long?>(StringComparer.Ordinal);
        foreach (var release in releases)
        {
            byKey[release.Key] = byKey.TryGetValue(release.Key, out var duration) ? Max(duration, release.DurationMs) : release.DurationMs;
        }

        var promoted = 0;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        foreach (var (key, durationMs) in byKey)
        {
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(KeyCommand(ConcurrencySql.SemaphoreLock, key, now));
            var promote = KeyCommand(ConcurrencySql.SemaphorePromote, key, now);
            promote.Parameters.Add(new NpgsqlParameter("duration_ms", NpgsqlDbType.Bigint) { Value = (object?)durationMs ?? DBNull.Value });
            batch.BatchCommands.Add(promote);

            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                promoted += checked((int)reader.GetInt64(0));
            }

            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
            {
            }
        }

        return promoted;
    }

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

    /// <summary>A permit a finalizing statement gave back: its concurrency key and the job's permit duration.</summary>
    private readonly record struct PermitRelease(string Key, long? DurationMs);

    /// <summary>What acquiring did to a set of jobs.</summary>
    private readonly record struct AcquireOutcome(int Ready, int Blocked, int Discarded);
}

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

using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

public sealed partial class SqliteStorage
{
    private const string ProcessesSelect = """
        SELECT p.id, p.name, p.kind, p.pid, p.hostname, p.started_at, p.supervisor_id, p.last_heartbeat_at, p.metadata,
               (SELECT count(*) FROM keel_claimed_executions c WHERE c.process_id = p.id)
        FROM keel_processes p
        WHERE (@stale_before IS NULL OR p.last_heartbeat_at < @stale_before)
        ORDER BY p.id
        """;

    private const string ProcessLockIfStale = "SELECT id FROM keel_processes WHERE id = @process_id AND (@stale_before IS NULL OR last_heartbeat_at < @stale_before)";

    private const string ClaimsDeleteOfProcess = "DELETE FROM keel_claimed_executions WHERE process_id = @process_id RETURNING job_id, attempt";

    private const string ClaimsDeleteByIds = "DELETE FROM keel_claimed_executions WHERE id IN (SELECT value FROM json_each(@claim_ids)) RETURNING job_id, attempt";

    private const string JobMarkLost = """
        UPDATE keel_jobs SET attempts = @attempt, worker_losses = worker_losses + 1 WHERE id = @job_id
        RETURNING queue, priority, worker_losses > max_worker_losses OR @attempt >= max_attempts
        """;

    private const string JobSetAttempt = "UPDATE keel_jobs SET attempts = @attempt WHERE id = @job_id RETURNING queue, priority";

    private const string JobQueueSelect = "SELECT queue, priority FROM keel_jobs WHERE id = @job_id";

    private const string ClaimsSelect = """
        SELECT c.id, c.job_id, j.kind, j.queue, c.attempt, c.claimed_at, p.id, p.name, p.hostname, p.pid, p.last_heartbeat_at
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        JOIN keel_processes p ON p.id = c.process_id
        WHERE (@process_id IS NULL OR c.process_id = @process_id)
          AND (@stale_before IS NULL OR p.last_heartbeat_at < @stale_before)
        ORDER BY c.claimed_at, c.id
        LIMIT @limit
        """;

    /// <inheritdoc />
    public async Task<IReadOnlyList<ProcessInfo>> ProcessesListAsync(ProcessesListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var now = Micros(parameters.Now);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, ProcessesSelect);
        select.Parameters.AddWithValue("@stale_before", StaleBefore(now, parameters.StaleAfter));
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var processes = new List<ProcessInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            var heartbeat = r.GetInt64(7);
            processes.Add(new ProcessInfo(
                r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetString(4), Time(r, 5),
                r.IsDBNull(6) ? null : r.GetInt64(6), TimeEncoding.FromMicros(heartbeat), Age(now, heartbeat), r.GetString(8), r.GetInt32(9)));
        }

        return processes;
    }

    /// <inheritdoc />
    public Task<RecoveryResult?> ProcessRecoverAsync(ProcessRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                // BEGIN IMMEDIATE already holds the write lock, so the staleness check and the prune cannot interleave
                // with a heartbeat or another pruner.
                await using (var check = Command(connection, transaction, ProcessLockIfStale))
                {
                    check.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                    check.Parameters.AddWithValue("@stale_before", StaleBefore(now, parameters.StaleAfter));
                    if (await check.ExecuteScalarAsync(cancellationToken) is null)
                    {
                        return null;
                    }
                }

                var lost = await DeleteClaimsAsync(connection, transaction, ClaimsDeleteOfProcess, c => c.Parameters.AddWithValue("@process_id", parameters.ProcessId), cancellationToken);
                var result = await RecoverLostAsync(connection, transaction, lost, parameters.Cause, now, cancellationToken);
                await using var delete = Command(connection, transaction, SqliteStatements.ProcessDelete);
                delete.Parameters.AddWithValue("@process_id", parameters.ProcessId);
                await delete.ExecuteNonQueryAsync(cancellationToken);
                return (RecoveryResult?)result;
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var now = Micros(parameters.Now);
        await using var connection = await OpenAsync(cancellationToken);
        await using var select = Command(connection, null, ClaimsSelect);
        select.Parameters.AddWithValue("@process_id", (object?)parameters.ProcessId ?? DBNull.Value);
        select.Parameters.AddWithValue("@stale_before", StaleBefore(now, parameters.StaleAfter));
        select.Parameters.AddWithValue("@limit", parameters.Limit);
        await using var r = await select.ExecuteReaderAsync(cancellationToken);
        var claims = new List<ClaimInfo>();
        while (await r.ReadAsync(cancellationToken))
        {
            var claimedAt = r.GetInt64(5);
            claims.Add(new ClaimInfo(
                r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetInt32(4), TimeEncoding.FromMicros(claimedAt), Age(now, claimedAt),
                r.GetInt64(6), r.GetString(7), r.GetString(8), r.GetInt32(9), Age(now, r.GetInt64(10))));
        }

        return claims;
    }

    /// <inheritdoc />
    public async Task<RecoveryResult> ClaimsRecoverAsync(ClaimsRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.ClaimIds.Count == 0)
        {
            return RecoveryResult.None;
        }

        return await WriteAsync(
            async (connection, transaction) =>
            {
                var now = Micros(parameters.Now);
                var claims = await DeleteClaimsAsync(connection, transaction, ClaimsDeleteByIds, c => c.Parameters.AddWithValue("@claim_ids", JsonArray(parameters.ClaimIds)), cancellationToken);
                foreach (var (jobId, attempt) in claims)
                {
                    if (parameters.Action == ClaimAction.Release)
                    {
                        var (queue, priority) = await QueueOfAsync(connection, transaction, JobQueueSelect, jobId, null, cancellationToken);
                        await InsertReadyAsync(connection, transaction, jobId, queue, priority, now, cancellationToken);
                    }
                    else
                    {
                        await QueueOfAsync(connection, transaction, JobSetAttempt, jobId, attempt, cancellationToken);
                        var failure = new FailureRecord(WorkerLostCause.ExceptionType, parameters.Cause.Message, null);
                        await InsertErrorAsync(connection, transaction, jobId, attempt, failure, parameters.Cause.Code, now, cancellationToken);
                        await InsertFailedAsync(connection, transaction, jobId, attempt, failure, parameters.Cause.Code, now, cancellationToken);
                        await LeaveAsync(connection, transaction, jobId, terminal: true, now, cancellationToken);
                    }
                }

                return parameters.Action == ClaimAction.Release ? new RecoveryResult(0, 0, claims.Count) : new RecoveryResult(0, claims.Count);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>SQLite has no sessions; same-host processes are checked by pid instead.</remarks>
    public Task<IReadOnlyList<long>> ProcessesSessionEndedAsync(ProcessesSessionParams parameters, CancellationToken cancellationToken)
        => Task.FromResult<IReadOnlyList<long>>([]);

    /// <summary>Applies each lost job's policy: back to ready as a counted attempt, or failed when losses or attempts are spent.</summary>
    private static async Task<RecoveryResult> RecoverLostAsync(SqliteConnection connection, SqliteTransaction transaction, List<(long JobId, long Attempt)> lost, WorkerLostCause cause, long now, CancellationToken cancellationToken)
    {
        var retried = 0;
        var failed = 0;
        var failure = new FailureRecord(WorkerLostCause.ExceptionType, cause.Message, null);
        foreach (var (jobId, attempt) in lost)
        {
            string queue;
            long priority;
            bool giveUp;
            await using (var mark = Command(connection, transaction, JobMarkLost))
            {
                mark.Parameters.AddWithValue("@attempt", attempt);
                mark.Parameters.AddWithValue("@job_id", jobId);
                await using var r = await mark.ExecuteReaderAsync(cancellationToken);
                await r.ReadAsync(cancellationToken);
                (queue, priority, giveUp) = (r.GetString(0), r.GetInt64(1), r.GetBoolean(2));
            }

            await InsertErrorAsync(connection, transaction, jobId, attempt, failure, cause.Code, now, cancellationToken);
            if (giveUp)
            {
                await InsertFailedAsync(connection, transaction, jobId, attempt, failure, cause.Code, now, cancellationToken);
                await LeaveAsync(connection, transaction, jobId, terminal: true, now, cancellationToken);
                failed++;
            }
            else
            {
                await InsertReadyAsync(connection, transaction, jobId, queue, priority, now, cancellationToken);
                retried++;
            }
        }

        return new RecoveryResult(retried, failed);
    }

    private static async Task<List<(long JobId, long Attempt)>> DeleteClaimsAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, Action<SqliteCommand> bind, CancellationToken cancellationToken)
    {
        var claims = new List<(long, long)>();
        await using var delete = Command(connection, transaction, sql);
        bind(delete);
        await using var r = await delete.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            claims.Add((r.GetInt64(0), r.GetInt64(1)));
        }

        return claims;
    }

    private static async Task<(string Queue, long Priority)> QueueOfAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, long jobId, long? attempt, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        command.Parameters.AddWithValue("@job_id", jobId);
        if (attempt is not null)
        {
            command.Parameters.AddWithValue("@attempt", attempt.Value);
        }

        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        return (r.GetString(0), r.GetInt64(1));
    }

    private static async Task InsertReadyAsync(SqliteConnection connection, SqliteTransaction transaction, long jobId, string queue, long priority, long now, CancellationToken cancellationToken)
    {
        await using var ready = Command(connection, transaction, SqliteStatements.ReadyInsert);
        ready.Parameters.AddWithValue("@job_id", jobId);
        ready.Parameters.AddWithValue("@queue", queue);
        ready.Parameters.AddWithValue("@priority", priority);
        ready.Parameters.AddWithValue("@now", now);
        await ready.ExecuteNonQueryAsync(cancellationToken);
    }

    private static object StaleBefore(long now, TimeSpan? staleAfter)
        => staleAfter is { } after ? now - (after.Ticks / 10) : DBNull.Value;

    private static TimeSpan Age(long now, long then) => TimeSpan.FromTicks(Math.Max(0, now - then) * 10);
}

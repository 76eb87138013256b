namespace Keel.MySql;

/// <summary>
/// The SQL of <c>keel_processes</c> on MariaDB/MySQL: registration, heartbeats and leases, graceful stops, and recovery
/// of a dead process's claims. Liveness is the lease (and the pid on the same host): no session locks. Times are
/// <c>BIGINT</c> microseconds; <c>@keel_now</c> is the transaction's time in the database clock.
/// </summary>
internal static class ProcessesSql
{
    /// <summary>Registers a process with its first lease (its id is the command's last inserted id).</summary>
    public const string ProcessRegister = """
        INSERT INTO keel_processes (name, kind, pid, hostname, started_at, supervisor_id, last_heartbeat_at, metadata, created_at,
                                    lease_expires_at, host_id, pid_start_ticks, liveness)
        VALUES (@name, @kind, @pid, @hostname, @started_at, @supervisor_id, @keel_now, @metadata, @keel_now,
                @keel_now + @lease, @host_id, @pid_start_ticks, 'lease')
        """;

    /// <summary>A heartbeat: renews the lease from the database's now; returns how many rows it found (none: the process was pruned).</summary>
    public const string ProcessHeartbeat = """
        UPDATE keel_processes SET last_heartbeat_at = @keel_now, lease_expires_at = @keel_now + @lease WHERE id = @process_id;
        SELECT ROW_COUNT()
        """;

    /// <summary>A heartbeat that also returns the claims the process holds, for a worker to reconcile with what it runs.</summary>
    public const string ProcessHeartbeatWithClaims = ProcessHeartbeat + """
        ;
        SELECT id FROM keel_claimed_executions WHERE process_id = @process_id ORDER BY id
        """;

    /// <summary>Marks a process as stopping gracefully (its leftovers are recovered uncharged).</summary>
    public const string ProcessStopping = "UPDATE keel_processes SET stopping_at = @keel_now WHERE id = @process_id";

    /// <summary>Marks claims whose jobs ignored their cancellation, just before their process exits to be replaced.</summary>
    /// <param name="claimIds">The claims.</param>
    /// <returns>The statements; the affected rows add up to how many were marked.</returns>
    public static string ClaimsMarkUnresponsive(IEnumerable<long> claimIds)
        => ConnectionSql.Each(claimIds, id => $"UPDATE keel_claimed_executions SET unresponsive_at = @keel_now WHERE process_id = @process_id AND id = {id}");

    /// <summary>Deletes a process row, after its claims were released or recovered in the same transaction.</summary>
    public const string ProcessDelete = "DELETE FROM keel_processes WHERE id = @process_id";

    /// <summary>Processes with their claim counts, by id; only those whose heartbeat is older than <c>@stale_after</c> (microseconds) when it is set.</summary>
    public const string ProcessesList = """
        SELECT p.id, p.name, p.kind, p.pid, p.hostname, p.started_at, p.supervisor_id, p.last_heartbeat_at, p.metadata,
               (SELECT count(*) FROM keel_claimed_executions c WHERE c.process_id = p.id),
               p.lease_expires_at, p.host_id, p.pid_start_ticks, p.liveness, p.stopping_at, @keel_now
        FROM keel_processes p
        WHERE @stale_after IS NULL OR p.last_heartbeat_at < @keel_now - @stale_after
        ORDER BY p.id
        """;

    /// <summary>
    /// Locks process rows for pruning, skipping any another pruner (or a heartbeat) holds, and re-checks the lease under
    /// the lock when pruning for an expired lease. Returns (id, stopping, runner JSON); no row means: do not prune.
    /// </summary>
    /// <param name="processIds">The candidates.</param>
    /// <returns>The statement.</returns>
    public static string ProcessRecoverLock(string processIds) => $"""
        SELECT id, stopping_at IS NOT NULL, JSON_OBJECT('process', id, 'name', name, 'pid', pid, 'host', hostname)
        FROM keel_processes
        WHERE id IN ({processIds})
          AND (NOT @lease_expired OR lease_expires_at < @keel_now)
        ORDER BY id
        FOR UPDATE SKIP LOCKED
        """;

    /// <summary>
    /// Takes every claim of the locked processes: returns (job, attempt, claim, claimed at, marked unresponsive,
    /// process) and deletes them. The caller decides who is charged (DESIGN §2.5) from these rows, as
    /// PostgreSQL's <c>ProcessRecoverClaims</c> does in SQL.
    /// </summary>
    /// <param name="processIds">The locked processes.</param>
    /// <returns>The statements.</returns>
    public static string ProcessRecoverClaims(IEnumerable<long> processIds) => ConnectionSql.Each(processIds, id => $"""
        SELECT job_id, attempt, id, claimed_at, unresponsive_at IS NOT NULL, process_id, cancel_reason
        FROM keel_claimed_executions WHERE process_id = {id} ORDER BY id FOR UPDATE;
        DELETE FROM keel_claimed_executions WHERE process_id = {id}
        """);

    /// <summary>Charges a lost run: counts the attempt and a loss, makes the job a suspect.</summary>
    public const string JobMarkLost = "UPDATE keel_jobs SET attempts = @attempt, worker_losses = worker_losses + 1, suspect = 1 WHERE id = @job_id";

    /// <summary>Whether a charged job has spent its losses or attempts (it fails); read after <see cref="JobMarkLost"/>.</summary>
    public const string JobGivesUp = "SELECT worker_losses > max_worker_losses OR @attempt >= max_attempts FROM keel_jobs WHERE id = @job_id";

    /// <summary>
    /// Counts a shared loss (the job shared a process that died); at its second the job becomes a suspect and runs alone
    /// next time. (MariaDB assigns left to right, so <c>suspect</c> reads the count before this loss.)
    /// </summary>
    public const string JobMarkSharedLoss = "UPDATE keel_jobs SET suspect = suspect OR shared_losses >= 1, shared_losses = shared_losses + 1 WHERE id = @job_id";

    /// <summary>Deletes the rows a prune locked (after their claims were recovered, in the same transaction).</summary>
    /// <param name="processIds">The locked processes.</param>
    /// <returns>The statements.</returns>
    public static string ProcessesDelete(IEnumerable<long> processIds) => ConnectionSql.Each(processIds, id => $"DELETE FROM keel_processes WHERE id = {id}");
}

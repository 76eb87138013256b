namespace Keel.Sqlite;

/// <summary>The SQL of <c>keel_processes</c> on SQLite: registration, heartbeats and leases, graceful stops, and recovery of a dead process's claims. Times are Unix microseconds.</summary>
internal static class ProcessesSql
{
    /// <summary>Registers a process with its first lease (SQLite has no sessions: liveness is the lease, and the pid on the same host).</summary>
    public const string ProcessRegister = """
        INSERT INTO keel_processes (name, kind, pid, hostname, started_at, supervisor_id, last_heartbeat_at, metadata, created_at,
                                    lease_expires_at, host_id, pid_start_ticks, liveness)
        VALUES (@name, @kind, @pid, @hostname, @started_at, @supervisor_id, @now, @metadata, @now,
                @now + @lease, @host_id, @pid_start_ticks, 'lease')
        RETURNING id
        """;

    /// <summary>A heartbeat: renews the lease. No row: the process was pruned.</summary>
    public const string ProcessHeartbeat = "UPDATE keel_processes SET last_heartbeat_at = @now, lease_expires_at = @now + @lease WHERE id = @process_id";

    /// <summary>The claims a process holds, for a worker to reconcile with what it runs.</summary>
    public const string ProcessClaims = "SELECT id FROM keel_claimed_executions WHERE process_id = @process_id ORDER BY id";

    /// <summary>Marks a process as stopping gracefully (its leftovers are recovered uncharged).</summary>
    public const string ProcessStopping = "UPDATE keel_processes SET stopping_at = @now WHERE id = @process_id";

    /// <summary>Marks claims whose jobs ignored their cancellation, just before their process exits to be replaced.</summary>
    public const string ClaimsMarkUnresponsive = """
        UPDATE keel_claimed_executions SET unresponsive_at = @now
        WHERE process_id = @process_id AND id IN (SELECT value FROM json_each(@claim_ids))
        """;

    /// <summary>Deletes a process row, after its claims were released or recovered in the same transaction.</summary>
    public const string ProcessDelete = "DELETE FROM keel_processes WHERE id = @process_id";

    /// <summary>Processes with their claim counts, by id; only those whose heartbeat is older than <c>@stale_before</c> when it is set.</summary>
    public const string ProcessesList = """
        SELECT p.id, p.name, p.kind, p.pid, p.hostname, p.started_at, p.supervisor_id, p.last_heartbeat_at, p.metadata,
               (SELECT count(*) FROM keel_claimed_executions c WHERE c.process_id = p.id),
               p.lease_expires_at, p.host_id, p.pid_start_ticks, p.liveness, p.stopping_at
        FROM keel_processes p
        WHERE (@stale_before IS NULL OR p.last_heartbeat_at < @stale_before)
        ORDER BY p.id
        """;

    /// <summary>
    /// Checks a process row for pruning (the write lock is already held): still there and, when pruning for an expired
    /// lease, still expired. Returns (id, stopping, runner JSON); no row means: do not prune.
    /// </summary>
    public const string ProcessRecoverLock = """
        SELECT id, stopping_at IS NOT NULL, json_object('process', id, 'name', name, 'pid', pid, 'host', hostname)
        FROM keel_processes WHERE id = @process_id AND (NOT @lease_expired OR lease_expires_at < @now)
        """;

    /// <summary>Takes every claim of a pruned process; returns (job, attempt, claim, claimed at, marked unresponsive).</summary>
    public const string ProcessClaimsTake = "DELETE FROM keel_claimed_executions WHERE process_id = @process_id RETURNING job_id, attempt, id, claimed_at, unresponsive_at IS NOT NULL, cancel_reason";

    /// <summary>Charges a lost run: counts the attempt and a loss, makes the job a suspect; returns (queue, priority, give up).</summary>
    public const string JobMarkLost = """
        UPDATE keel_jobs SET attempts = @attempt, worker_losses = worker_losses + 1, suspect = 1 WHERE id = @job_id
        RETURNING queue, priority, worker_losses > max_worker_losses OR @attempt >= max_attempts
        """;

    /// <summary>
    /// Counts a shared loss (the job shared a process that died); at its second the job becomes a suspect and runs alone
    /// next time.
    /// </summary>
    public const string JobMarkSharedLoss = "UPDATE keel_jobs SET shared_losses = shared_losses + 1, suspect = suspect OR shared_losses >= 1 WHERE id = @job_id";
}

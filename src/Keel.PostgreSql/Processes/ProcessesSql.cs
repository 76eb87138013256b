namespace Keel.PostgreSql;

/// <summary>The SQL of <c>keel_processes</c> on PostgreSQL: registration, heartbeats and leases, session liveness (advisory locks), graceful stops, and recovery of a dead process's claims; <c>coalesce(@now, now())</c> means "the caller's time, else the database clock".</summary>
internal static class ProcessesSql
{
    /// <summary>Registers a process with its first lease; <c>@liveness</c> is <c>session</c> when its session lock follows.</summary>
    public const string ProcessRegister = """
        INSERT INTO keel_processes (name, kind, pid, hostname, started_at, supervisor_id, last_heartbeat_at, metadata, created_at,
                                    lease_expires_at, host_id, pid_start_ticks, liveness)
        VALUES (@name, @kind, @pid, @hostname, @started_at, @supervisor_id, coalesce(@now, now()), @metadata::json, coalesce(@now, now()),
                coalesce(@now, now()) + @lease, @host_id, @pid_start_ticks, @liveness)
        RETURNING id
        """;

    /// <summary>A heartbeat: renews the lease from the database's now. No row: the process was pruned.</summary>
    public const string ProcessHeartbeat = """
        UPDATE keel_processes
        SET last_heartbeat_at = coalesce(@now, now()), lease_expires_at = coalesce(@now, now()) + @lease
        WHERE id = @process_id
        RETURNING 1
        """;

    /// <summary>
    /// A heartbeat that also returns the claims the process holds, for a worker to reconcile with what it runs: all but
    /// a claim its hand-off offer records, which the worker settles through the offer (it may not have read the
    /// notification that carries it yet).
    /// </summary>
    public const string ProcessHeartbeatWithClaims = """
        UPDATE keel_processes
        SET last_heartbeat_at = coalesce(@now, now()), lease_expires_at = coalesce(@now, now()) + @lease
        WHERE id = @process_id
        RETURNING (SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}') FROM keel_claimed_executions c
                   WHERE c.process_id = @process_id
                     AND c.id <> ALL (ARRAY(SELECT o.claim_id FROM keel_hand_off_offers o
                                            WHERE o.process_id = @process_id AND o.claim_id IS NOT NULL)))
        """;

    /// <summary>Marks a process as stopping gracefully (its leftovers are recovered uncharged).</summary>
    public const string ProcessStopping = "UPDATE keel_processes SET stopping_at = coalesce(@now, now()) WHERE id = @process_id";

    /// <summary>Marks claims whose jobs ignored their cancellation, just before their process exits to be replaced.</summary>
    public const string ClaimsMarkUnresponsive = """
        UPDATE keel_claimed_executions SET unresponsive_at = coalesce(@now, now())
        WHERE process_id = @process_id AND id = ANY(@claim_ids)
        """;

    /// <summary>Runs after <see cref="ClaimsSql.ClaimsReleaseAll"/> (or <see cref="ProcessRecoverClaims"/>) in the same transaction.</summary>
    public const string ProcessDelete = "DELETE FROM keel_processes WHERE id = @process_id";

    /// <summary>
    /// Processes with their heartbeat age and claim count, by id; only those older than <c>@stale_after</c>
    /// when it is not null.
    /// </summary>
    public const string ProcessesList = """
        SELECT p.id, p.name, p.kind, p.pid, p.hostname, p.started_at, p.supervisor_id, p.last_heartbeat_at,
               coalesce(@now, now()) - p.last_heartbeat_at AS heartbeat_age, p.metadata::text,
               (SELECT count(*) FROM keel_claimed_executions c WHERE c.process_id = p.id) AS claims,
               p.lease_expires_at, p.lease_expires_at - coalesce(@now, now()) AS lease_remaining, p.host_id, p.pid_start_ticks,
               p.liveness, p.stopping_at
        FROM keel_processes p
        WHERE @stale_after::interval IS NULL OR p.last_heartbeat_at < coalesce(@now, now()) - @stale_after
        ORDER BY p.id
        """;

    /// <summary>
    /// Locks a process row for pruning, skipping it when another pruner (or a heartbeat) holds it, and
    /// re-checks staleness under the lock. No row means: do not prune.
    /// </summary>
    public const string ProcessRecoverLock = """
        SELECT id
        FROM keel_processes
        WHERE id = ANY(@process_ids)
          AND (NOT @lease_expired OR lease_expires_at < coalesce(@now, now()))
        ORDER BY id
        FOR UPDATE SKIP LOCKED
        """;

    /// <summary>
    /// Recovers every claim of the locked processes (one OS process's rows) and decides who is charged (DESIGN §2.5).
    /// With <c>@blame</c> (the process died) and no graceful stop begun: a claim marked unresponsive is charged alone;
    /// otherwise the only claim of the dying process is charged; claims that shared it are charged nothing, count a
    /// shared loss, and at their second become suspects (they run alone next time, so the next death names its culprit). A charged job counts the
    /// attempt and a loss and goes back to ready, or fails with a <c>WorkerLostException</c> once its losses or attempts
    /// are spent (freeing its uniqueness key and giving its permit back); an uncharged one goes back to ready as it was.
    /// A claim whose run was asked to stop (<c>cancel_reason</c>) is neither charged nor put back: its job is discarded as
    /// cancelled. Every run is recorded in <c>keel_job_runs</c> with who ran it and what it shared the process with. Returns
    /// (retried, failed, released, notified, concurrency keys of the failed and cancelled jobs, their permit durations,
    /// cancelled) — the caller
    /// promotes blocked jobs of those keys after commit. Runs after <see cref="ProcessRecoverLock"/> and before
    /// <see cref="ProcessesDelete"/>.
    /// </summary>
    public const string ProcessRecoverClaims = """
        WITH lost AS (
            DELETE FROM keel_claimed_executions c
            WHERE c.process_id = ANY(@process_ids)
            RETURNING c.id AS claim_id, c.job_id, c.attempt, c.claimed_at, c.process_id, c.unresponsive_at, c.cancel_reason
        ),
        census AS (
            SELECT count(*) AS n, count(unresponsive_at) AS stuck,
                   @blame AND NOT EXISTS (SELECT 1 FROM keel_processes p WHERE p.id = ANY(@process_ids) AND p.stopping_at IS NOT NULL) AS blame
            FROM lost
        ),
        decided AS (
            SELECT l.claim_id, l.job_id, l.attempt, l.claimed_at, l.process_id, l.cancel_reason,
                   l.cancel_reason IS NULL AND cs.blame AND CASE WHEN cs.stuck > 0 THEN l.unresponsive_at IS NOT NULL ELSE cs.n = 1 END AS charged,
                   l.cancel_reason IS NULL AND cs.blame AND cs.stuck = 0 AND cs.n > 1 AS suspected,
                   (SELECT string_agg(o.job_id::text, ',' ORDER BY o.job_id) FROM lost o WHERE o.job_id <> l.job_id) AS shared_with
            FROM lost l CROSS JOIN census cs
        ),
        upd AS (
            UPDATE keel_jobs j
            SET attempts = CASE WHEN d.charged THEN d.attempt ELSE j.attempts END,
                worker_losses = j.worker_losses + CASE WHEN d.charged THEN 1 ELSE 0 END,
                shared_losses = j.shared_losses + CASE WHEN d.suspected THEN 1 ELSE 0 END,
                suspect = j.suspect OR d.charged OR (d.suspected AND j.shared_losses >= 1),
                discarded_at = CASE WHEN d.cancel_reason IS NOT NULL THEN coalesce(@now, now()) ELSE j.discarded_at END,
                checkpoint = CASE WHEN d.cancel_reason IS NOT NULL THEN NULL ELSE j.checkpoint END
            FROM decided d
            WHERE j.id = d.job_id
            RETURNING j.id, j.queue, j.priority, d.attempt, d.charged, d.claim_id, d.claimed_at, d.process_id, d.shared_with,
                      j.suspect, j.concurrency_key, j.concurrency_duration_ms,
                      (d.charged AND (j.worker_losses > j.max_worker_losses OR d.attempt >= j.max_attempts)) AS give_up,
                      d.cancel_reason, j.workflow, j.batch_id
        ),
        unkeyed AS (
            DELETE FROM keel_unique_keys u
            USING upd
            WHERE u.job_id = upd.id AND (upd.give_up OR upd.cancel_reason IS NOT NULL)
        ),
        gave AS (
            SELECT concurrency_key FROM upd WHERE give_up OR cancel_reason IS NOT NULL
        ),
        """ + ConcurrencySql.GiveBack + "," + """
        error AS (
            INSERT INTO keel_job_errors (job_id, attempt, exception_type, message, stack_trace, cause, occurred_at)
            SELECT id, attempt, @exception_type, @message, NULL, @cause, coalesce(@now, now())
            FROM upd
            WHERE charged
        ),
        run AS (
            INSERT INTO keel_job_runs (job_id, attempt, claim_id, runner, started_at, ended_at, outcome, cause, charged, detail, shared_with)
            SELECT u.id, u.attempt, u.claim_id,
                   (SELECT json_build_object('process', p.id, 'name', p.name, 'pid', p.pid, 'host', p.hostname)::text
                    FROM keel_processes p WHERE p.id = u.process_id),
                   u.claimed_at, coalesce(@now, now()),
                   CASE WHEN u.cancel_reason IS NULL THEN 'lost' ELSE 'cancelled' END,
                   CASE WHEN u.cancel_reason IS NULL THEN @cause ELSE 'process-ended' END, u.charged,
                   CASE WHEN u.cancel_reason IS NULL THEN @message ELSE u.cancel_reason || ' (its run ended with its process: ' || @message || ')' END,
                   u.shared_with
            FROM upd u
        ),
        failed AS (
            INSERT INTO keel_failed_executions (job_id, exception_type, message, stack_trace, attempt, cause, created_at, queue)
            SELECT id, @exception_type, @message, NULL, attempt, @cause, coalesce(@now, now()), queue
            FROM upd
            WHERE give_up
            RETURNING job_id
        ),
        ready AS (
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at, suspect)
            SELECT id, queue, priority, coalesce(@now, now()), suspect
            FROM upd
            WHERE NOT give_up AND cancel_reason IS NULL
            RETURNING queue
        )
        SELECT (SELECT count(*) FROM upd WHERE charged AND NOT give_up),
               (SELECT count(*) FROM failed),
               (SELECT count(*) FROM upd WHERE NOT charged AND cancel_reason IS NULL),
               (SELECT count(*) FROM (SELECT pg_notify('keel_jobs', q.queue) FROM (SELECT DISTINCT queue FROM ready) q) x),
               (SELECT array_agg(concurrency_key ORDER BY id) FROM upd WHERE (give_up OR cancel_reason IS NOT NULL) AND concurrency_key IS NOT NULL),
               (SELECT array_agg(coalesce(concurrency_duration_ms, 0) ORDER BY id) FROM upd WHERE (give_up OR cancel_reason IS NOT NULL) AND concurrency_key IS NOT NULL),
               (SELECT count(*) FROM upd WHERE cancel_reason IS NOT NULL),
               (SELECT array_agg(id ORDER BY id) FROM upd WHERE give_up AND (workflow IS NOT NULL OR batch_id IS NOT NULL)),
               (SELECT array_agg(id ORDER BY id) FROM upd WHERE cancel_reason IS NOT NULL AND (workflow IS NOT NULL OR batch_id IS NOT NULL))
        """;

    /// <summary>Deletes the rows a prune locked (after their claims were recovered, in the same transaction).</summary>
    public const string ProcessesDelete = "DELETE FROM keel_processes WHERE id = ANY(@process_ids)";

    /// <summary>
    /// The first key of every process's session lock, "KEEL". Process locks use the two-int4 form
    /// <c>pg_advisory_lock(int, int)</c>, a key space PostgreSQL keeps apart from the single-bigint form
    /// (<see cref="MigrationsSql.MigrationLockKey"/>); the second key is the process id's low 32 bits.
    /// </summary>
    public const int SessionLockNamespace = 0x4B45454C;

    /// <summary>
    /// Takes a new process's session lock, inside its registration transaction on its dedicated connection.
    /// Never waits: false means another session holds the key (a colliding id), and the registration retries
    /// with a new row so that every committed row is covered by its own lock.
    /// </summary>
    public const string ProcessSessionLock = "SELECT pg_try_advisory_lock(@namespace, @key)";

    /// <summary>
    /// A heartbeat on a dedicated connection that does not hold its session lock (it reconnected): re-takes the
    /// lock only when the row still exists (RETURNING runs for an updated row only). No row means the process
    /// was pruned; false means another session holds the key for now, so the next heartbeat tries again.
    /// </summary>
    public const string ProcessHeartbeatRelock = """
        UPDATE keel_processes SET liveness = 'session'
        WHERE id = @process_id
        RETURNING pg_try_advisory_lock(@namespace, @key)
        """;

    /// <summary>Which backend holds a process's session lock, if any (after a relock was refused).</summary>
    public const string ProcessSessionHolder = """
        SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = @namespace::oid AND objid = (@key::bigint & 4294967295)::oid AND objsubid = 2 AND granted
        LIMIT 1
        """;

    /// <summary>Ends a backend of our own that still holds our lock after its connection was given up (a black hole).</summary>
    public const string ProcessSessionTerminate = "SELECT pg_terminate_backend(@pid)";

    /// <summary>Releases whatever session locks a dedicated connection holds (only its process's) before it is closed.</summary>
    public const string ProcessSessionUnlock = "SELECT pg_advisory_unlock_all()";

    /// <summary>
    /// Of the candidates whose row remains, those whose session lock can be taken: their session is gone (a
    /// deregistered process has no row, and a registration not yet committed is not visible). Each lock this takes is
    /// released by the same statement (the CASE guarantees unlock runs exactly for the locks taken), so the pooled
    /// session never keeps one. Nothing is probed while the server has been up for less than
    /// <c>@minimum_uptime</c> (a one-time filter, evaluated before any lock is tried).
    /// </summary>
    public const string ProcessesSessionEnded = """
        WITH probe AS MATERIALIZED (
            SELECT c.id, c.key, pg_try_advisory_lock(@namespace, c.key) AS taken
            FROM unnest(@process_ids, @keys) AS c(id, key)
            WHERE now() - pg_postmaster_start_time() >= @minimum_uptime
              AND EXISTS (SELECT 1 FROM keel_processes p WHERE p.id = c.id AND p.liveness = 'session')
        )
        SELECT id
        FROM probe
        WHERE CASE WHEN taken THEN pg_advisory_unlock(@namespace, key) ELSE false END
        ORDER BY id
        """;
}

-- Direct hand-off (docs/architecture.md): an idle worker offers one slot; an enqueue that finds the offer inserts its job
-- already claimed by that worker and records the claim here, so that the worker, not a heartbeat's reconcile, settles
-- a claim whose notification it has not read yet. One row per worker at most; it goes with its process.
CREATE TABLE keel_hand_off_offers (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    process_id bigint      NOT NULL REFERENCES keel_processes (id) ON DELETE CASCADE,
    queues     text[]      NOT NULL,
    claim_id   bigint      NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX keel_hand_off_offers_process ON keel_hand_off_offers (process_id);

-- One job enqueued alone (HandOffSql.JobInsert calls it). A function, not one statement, because only the branch taken
-- touches its tables: a single statement locked the claim, offer and process tables with all their indexes on every
-- enqueue, over the 16 locks a backend takes without the shared lock manager, and enqueues from several clients queued
-- on it. When the job is due and an idle worker whose lease holds offers a slot for its queue (unpaused), the job is
-- inserted already claimed by that worker, the offer records the claim, and the notification carries the claim. Else
-- it is ready (its queue notified) or scheduled, as any insert. The offer is taken with SKIP LOCKED (an enqueue never
-- waits for another, and two never take one offer), and the process row is held against a concurrent prune (KEY SHARE,
-- skipped when a pruner holds it), so the claim's foreign key cannot fail the enqueue.
CREATE FUNCTION keel_job_insert_one(p_queue text, p_kind text, p_args text, p_priority integer, p_scheduled_at timestamptz,
                                    p_max_attempts integer, p_max_worker_losses integer, p_trace_parent text, p_now timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now     timestamptz := coalesce(p_now, now());
    v_due     boolean     := p_scheduled_at IS NULL OR p_scheduled_at <= coalesce(p_now, now());
    v_offer   bigint;
    v_process bigint;
    v_job     keel_jobs%ROWTYPE;
    v_claim   keel_claimed_executions%ROWTYPE;
BEGIN
    IF v_due AND EXISTS (SELECT 1 FROM keel_hand_off_offers WHERE claim_id IS NULL) THEN
        SELECT o.id, o.process_id INTO v_offer, v_process
        FROM keel_hand_off_offers o
        JOIN keel_processes p ON p.id = o.process_id
        WHERE o.claim_id IS NULL
          AND p.stopping_at IS NULL
          AND p.lease_expires_at > v_now
          AND EXISTS (SELECT 1 FROM unnest(o.queues) f(q)
                      WHERE f.q = '*' OR f.q = '=' || p_queue OR (left(f.q, 1) = '^' AND starts_with(p_queue, substr(f.q, 2))))
          AND NOT EXISTS (SELECT 1 FROM keel_pauses ps WHERE ps.queue = p_queue)
        ORDER BY o.id
        LIMIT 1
        FOR UPDATE OF o SKIP LOCKED
        FOR KEY SHARE OF p SKIP LOCKED;
    END IF;

    INSERT INTO keel_jobs (queue, kind, args, priority, scheduled_at, max_attempts, max_worker_losses, trace_parent, created_at)
    VALUES (p_queue, p_kind, p_args::json, p_priority, p_scheduled_at, p_max_attempts, p_max_worker_losses, p_trace_parent, v_now)
    RETURNING * INTO v_job;

    IF v_offer IS NULL THEN
        IF v_due THEN
            INSERT INTO keel_ready_executions (job_id, queue, priority, created_at) VALUES (v_job.id, p_queue, p_priority, v_now);
            PERFORM pg_notify('keel_jobs', p_queue);
        ELSE
            INSERT INTO keel_scheduled_executions (job_id, queue, priority, scheduled_at, created_at)
            VALUES (v_job.id, p_queue, p_priority, p_scheduled_at, v_now);
        END IF;
        RETURN v_job.id;
    END IF;

    INSERT INTO keel_claimed_executions (job_id, process_id, attempt, claimed_at)
    VALUES (v_job.id, v_process, v_job.attempts + 1, v_now)
    RETURNING * INTO v_claim;
    UPDATE keel_hand_off_offers SET claim_id = v_claim.id WHERE id = v_offer;
    PERFORM pg_notify('keel_jobs', 'keel:hand-off:' || json_build_object(
        'offer', v_offer, 'process', v_process, 'claim', v_claim.id, 'job', v_job.id, 'kind', v_job.kind, 'queue', v_job.queue,
        'args', v_job.args, 'priority', v_job.priority, 'attempt', v_claim.attempt, 'max_attempts', v_job.max_attempts,
        'worker_losses', v_job.worker_losses, 'created_at', v_job.created_at, 'claimed_at', v_claim.claimed_at,
        'trace_parent', v_job.trace_parent)::text);
    RETURN v_job.id;
END;
$$;

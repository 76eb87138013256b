-- Cancel of a running job (docs/running-jobs.md): the request is stored on the run's claim, so it belongs to that run
-- and goes with it; the claim's worker reads it (by process_id, through keel_claimed_process) while it holds claims.
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_requested_at timestamptz NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_reason text NULL;

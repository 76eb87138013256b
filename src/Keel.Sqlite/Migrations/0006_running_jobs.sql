-- Cancel of a running job (docs/running-jobs.md): the request is stored on the run's claim, so it belongs to that run
-- and goes with it; the claim's worker reads it (by process_id, through keel_claimed_process) while it holds claims.
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_requested_at INTEGER NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_reason TEXT NULL;
-- Checkpoints (docs/running-jobs.md): a running job's saved state (JSON), written under its claim and read by the
-- claim of its next attempt; cleared when the job finishes, fails for good or is cancelled.
ALTER TABLE keel_jobs ADD COLUMN checkpoint TEXT NULL;
-- Progress (docs/running-jobs.md): how far a running job got, written under its claim (at most once a second per run)
-- and gone with it.
ALTER TABLE keel_claimed_executions ADD COLUMN progress REAL NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN progress_message TEXT NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN progress_at INTEGER NULL;

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
-- Job logs and results (docs/running-jobs.md): lines a run logged through JobContext.Logger, kept per attempt (bounded),
-- and a small result value a run set; both written under the claim and deleted with the job.
ALTER TABLE keel_jobs ADD COLUMN result TEXT NULL;
CREATE TABLE keel_job_logs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    INTEGER NOT NULL REFERENCES keel_jobs (id) ON DELETE CASCADE,
    attempt   INTEGER NOT NULL,
    logged_at INTEGER NOT NULL,
    level     TEXT    NOT NULL,
    message   TEXT    NOT NULL
);
CREATE INDEX keel_job_logs_job ON keel_job_logs (job_id);

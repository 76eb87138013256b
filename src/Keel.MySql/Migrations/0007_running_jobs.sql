-- Cancel of a running job (docs/running-jobs.md): the request is stored on the run's claim, so it belongs to that run
-- and goes with it; the claim's worker reads it (by process_id, through keel_claimed_process) while it holds claims.
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_requested_at BIGINT NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_reason TEXT NULL;
-- Checkpoints (docs/running-jobs.md): a running job's saved state (JSON), written under its claim and read by the
-- claim of its next attempt; cleared when the job finishes, fails for good or is cancelled.
ALTER TABLE keel_jobs ADD COLUMN checkpoint MEDIUMTEXT NULL;
-- Progress (docs/running-jobs.md): how far a running job got, written under its claim (at most once a second per run)
-- and gone with it.
ALTER TABLE keel_claimed_executions ADD COLUMN progress DOUBLE NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN progress_message TEXT NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN progress_at BIGINT NULL;
-- Job logs and results (docs/running-jobs.md): lines a run logged through JobContext.Logger, kept per attempt (bounded),
-- and a small result value a run set; both written under the claim and deleted with the job.
ALTER TABLE keel_jobs ADD COLUMN result MEDIUMTEXT NULL;
CREATE TABLE keel_job_logs (
    id        BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id    BIGINT      NOT NULL,
    attempt   INT         NOT NULL,
    logged_at BIGINT      NOT NULL,
    level     VARCHAR(16) NOT NULL,
    message   TEXT        NOT NULL,
    KEY keel_job_logs_job (job_id),
    CONSTRAINT keel_job_logs_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
);

-- Cancel of a running job (docs/running-jobs.md): the request is stored on the run's claim, so it belongs to that run
-- and goes with it; the claim's worker reads it (by process_id, through keel_claimed_process) while it holds claims.
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_requested_at timestamptz NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN cancel_reason text NULL;
-- Checkpoints (docs/running-jobs.md): a running job's saved state (JSON), written under its claim and read by the
-- claim of its next attempt; cleared when the job finishes, fails for good or is cancelled.
ALTER TABLE keel_jobs ADD COLUMN checkpoint text NULL;
-- Progress (docs/running-jobs.md): how far a running job got, written under its claim (at most once a second per run)
-- and gone with it.
ALTER TABLE keel_claimed_executions ADD COLUMN progress double precision NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN progress_message text NULL;
ALTER TABLE keel_claimed_executions ADD COLUMN progress_at timestamptz NULL;
-- Job logs and results (docs/running-jobs.md): lines a run logged through JobContext.Logger, kept per attempt (bounded),
-- and a small result value a run set; both written under the claim and deleted with the job.
ALTER TABLE keel_jobs ADD COLUMN result text NULL;
CREATE TABLE keel_job_logs (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    bigint      NOT NULL REFERENCES keel_jobs (id) ON DELETE CASCADE,
    attempt   integer     NOT NULL,
    logged_at timestamptz NOT NULL,
    level     text        NOT NULL,
    message   text        NOT NULL
);
CREATE INDEX keel_job_logs_job ON keel_job_logs (job_id);

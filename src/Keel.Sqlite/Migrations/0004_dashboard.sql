-- When a finished job's last run started: copied from its claim in the statement that completes it (no extra
-- write), so the dashboard can chart queue latency (start minus due time) after the claim row is gone.
ALTER TABLE keel_jobs ADD COLUMN started_at INTEGER NULL;
-- The dashboard's failures-per-minute chart reads the last hour of errors by time.
CREATE INDEX keel_job_errors_occurred ON keel_job_errors (occurred_at);

-- When a finished job's last run started: copied from its claim in the statement that completes it (no extra
-- write), so the dashboard can chart queue latency (start minus due time) after the claim row is gone.
ALTER TABLE keel_jobs ADD COLUMN started_at timestamptz NULL;
-- The dashboard's failures-per-minute chart reads the last hour of errors by time.
CREATE INDEX keel_job_errors_occurred ON keel_job_errors (occurred_at);
-- Failed executions carry their queue like the other execution tables, so the dashboard's and `keel status`'s
-- per-queue failed counts read this small table alone instead of joining every failed job to the jobs table.
ALTER TABLE keel_failed_executions ADD COLUMN queue text NULL;
UPDATE keel_failed_executions SET queue = (SELECT j.queue FROM keel_jobs j WHERE j.id = keel_failed_executions.job_id);
CREATE INDEX keel_failed_queue ON keel_failed_executions (queue);

-- When a finished job's last run started: copied from its claim in the statement that completes it (no extra
-- write), so the dashboard can chart queue latency (start minus due time) after the claim row is gone.
ALTER TABLE keel_jobs ADD COLUMN started_at BIGINT NULL;
-- The dashboard's failures-per-minute chart reads the last hour of errors by time.
ALTER TABLE keel_job_errors ADD KEY keel_job_errors_occurred (occurred_at);
-- Failed executions carry their queue like the other execution tables, so the dashboard's and `keel status`'s
-- per-queue failed counts read this small table alone instead of joining every failed job to the jobs table.
ALTER TABLE keel_failed_executions ADD COLUMN queue VARCHAR(255) NULL, ADD KEY keel_failed_queue (queue);
UPDATE keel_failed_executions f JOIN keel_jobs j ON j.id = f.job_id SET f.queue = j.queue;

-- How many lost workers a job survives before recovery fails it (0 = OnWorkerLost.Fail). Stored with the
-- job so that any process's maintenance can apply the policy, even one that does not know the job's code.
-- Discarded jobs keep their row (a person or a policy discarded them; retention deletes them later).
ALTER TABLE keel_jobs
    ADD COLUMN max_worker_losses INT NOT NULL DEFAULT 2,
    ADD COLUMN discarded_at BIGINT NULL,
    ADD KEY keel_jobs_discarded (discarded_at);

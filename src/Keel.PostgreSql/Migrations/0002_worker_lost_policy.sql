-- How many lost workers a job survives before recovery fails it (0 = OnWorkerLost.Fail). Stored with the
-- job so that any process's maintenance can apply the policy, even one that does not know the job's code.
ALTER TABLE keel_jobs ADD COLUMN max_worker_losses integer NOT NULL DEFAULT 2;

-- Discarded jobs keep their row (a person or a policy discarded them; retention deletes them later).
ALTER TABLE keel_jobs ADD COLUMN discarded_at timestamptz NULL;
CREATE INDEX keel_jobs_discarded ON keel_jobs (discarded_at) WHERE discarded_at IS NOT NULL;

-- Concurrency limits: the permit count and how long a permit lives are stored with the job, so any process
-- (a dispatcher making a scheduled job ready, maintenance) can acquire and release without the job's code.
ALTER TABLE keel_jobs ADD COLUMN concurrency_limit integer NULL;
ALTER TABLE keel_jobs ADD COLUMN concurrency_duration_ms bigint NULL;
CREATE INDEX keel_jobs_concurrency_key ON keel_jobs (concurrency_key) WHERE concurrency_key IS NOT NULL;
ALTER TABLE keel_semaphores ADD COLUMN limit_value integer NOT NULL DEFAULT 1;

-- Unique jobs: one row per key while its job is ready, scheduled, blocked or claimed.
CREATE TABLE keel_unique_keys (
    key    text   PRIMARY KEY,
    job_id bigint NOT NULL UNIQUE REFERENCES keel_jobs (id) ON DELETE CASCADE
);

-- Recurring tasks: what to do with ticks missed while no scheduler ran ('skip', 'once' or 'all' up to the limit).
ALTER TABLE keel_recurring_tasks ADD COLUMN catch_up text NOT NULL DEFAULT 'skip';
ALTER TABLE keel_recurring_tasks ADD COLUMN catch_up_limit integer NOT NULL DEFAULT 1;
ALTER TABLE keel_recurring_tasks ADD COLUMN max_attempts integer NULL;

-- Concurrency limits: the permit count and how long a permit lives are stored with the job, so any process
-- (a dispatcher making a scheduled job ready, maintenance) can acquire and release without the job's code.
ALTER TABLE keel_jobs
    ADD COLUMN concurrency_limit INT NULL,
    ADD COLUMN concurrency_duration_ms BIGINT NULL,
    ADD KEY keel_jobs_concurrency_key (concurrency_key);
ALTER TABLE keel_semaphores ADD COLUMN limit_value INT NOT NULL DEFAULT 1;

-- Unique jobs: one row per key while its job is ready, scheduled, blocked or claimed.
CREATE TABLE keel_unique_keys (
    `key`  VARCHAR(512) NOT NULL PRIMARY KEY,
    job_id BIGINT       NOT NULL,
    UNIQUE KEY keel_unique_keys_job (job_id),
    CONSTRAINT keel_unique_keys_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Recurring tasks: what to do with ticks missed while no scheduler ran ('skip', 'once' or 'all' up to the limit).
ALTER TABLE keel_recurring_tasks
    ADD COLUMN catch_up VARCHAR(16) NOT NULL DEFAULT 'skip',
    ADD COLUMN catch_up_limit INT NOT NULL DEFAULT 1,
    ADD COLUMN max_attempts INT NULL;

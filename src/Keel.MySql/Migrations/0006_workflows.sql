-- Workflows (docs/workflows.md). A plain job leaves both columns null, so its completion pays nothing for them:
-- workflow = 1 when jobs wait on it (it has dependency edges as a parent); batch_id when it counts in a batch.
ALTER TABLE keel_jobs
    ADD COLUMN workflow INT NULL,
    ADD COLUMN batch_id BIGINT NULL,
    ADD KEY keel_jobs_batch (batch_id, id);

-- A job waiting for its parents: `waiting` counts the parents not yet settled.
CREATE TABLE keel_awaiting_executions (
    job_id     BIGINT       NOT NULL PRIMARY KEY,
    queue      VARCHAR(255) NOT NULL,
    priority   INT          NOT NULL,
    waiting    INT          NOT NULL,
    created_at BIGINT       NOT NULL,
    CONSTRAINT keel_awaiting_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per edge: the child (job_id) waits for the parent's outcomes in wait_on (1 succeeded, 2 failed,
-- 4 discarded); on_unmet 0 discards the child on another outcome, 1 runs it anyway; outcome is null until the parent
-- settles. No foreign key on the parent: a parent deleted by retention leaves its children's record of it.
CREATE TABLE keel_job_dependencies (
    parent_id BIGINT NOT NULL,
    job_id    BIGINT NOT NULL,
    wait_on   INT    NOT NULL,
    on_unmet  INT    NOT NULL,
    outcome   INT    NULL,
    PRIMARY KEY (parent_id, job_id),
    KEY keel_job_dependencies_child (job_id),
    CONSTRAINT keel_job_dependencies_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Batches: counters moved by each job's final outcome in its own transaction; completed_at is set (and the
-- callbacks enqueued) by the transaction that moves the last pending job, and only by that one.
CREATE TABLE keel_batches (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    parent_batch_id BIGINT       NULL,
    description     TEXT         NULL,
    total           BIGINT       NOT NULL DEFAULT 0,
    pending         BIGINT       NOT NULL DEFAULT 0,
    succeeded       BIGINT       NOT NULL DEFAULT 0,
    failed          BIGINT       NOT NULL DEFAULT 0,
    discarded       BIGINT       NOT NULL DEFAULT 0,
    created_at      BIGINT       NOT NULL,
    completed_at    BIGINT       NULL,
    succeeded_at    BIGINT       NULL,
    KEY keel_batches_completed (completed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A batch's callbacks: the job to enqueue (a serialized NewJob) and, once enqueued, its id.
CREATE TABLE keel_batch_callbacks (
    id       BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    batch_id BIGINT       NOT NULL,
    on_event VARCHAR(16)  NOT NULL,
    kind     VARCHAR(255) NOT NULL,
    job      MEDIUMTEXT   NOT NULL,
    job_id   BIGINT       NULL,
    KEY keel_batch_callbacks_batch (batch_id),
    CONSTRAINT keel_batch_callbacks_batch FOREIGN KEY (batch_id) REFERENCES keel_batches (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Workflows (docs/workflows.md). A plain job leaves both columns null, so its completion pays nothing for them:
-- workflow = 1 when jobs wait on it (it has dependency edges as a parent); batch_id when it counts in a batch.
ALTER TABLE keel_jobs ADD COLUMN workflow INTEGER NULL;
ALTER TABLE keel_jobs ADD COLUMN batch_id INTEGER NULL;
CREATE INDEX keel_jobs_batch ON keel_jobs (batch_id, id) WHERE batch_id IS NOT NULL;

-- A job waiting for its parents: `waiting` counts the parents not yet settled.
CREATE TABLE keel_awaiting_executions (
    job_id     INTEGER PRIMARY KEY REFERENCES keel_jobs (id) ON DELETE CASCADE,
    queue      TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    waiting    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per edge: the child (job_id) waits for the parent's outcomes in wait_on (1 succeeded, 2 failed,
-- 4 discarded); on_unmet 0 discards the child on another outcome, 1 runs it anyway; outcome is null until the parent
-- settles. No foreign key on the parent: a parent deleted by retention leaves its children's record of it.
CREATE TABLE keel_job_dependencies (
    parent_id INTEGER NOT NULL,
    job_id    INTEGER NOT NULL REFERENCES keel_jobs (id) ON DELETE CASCADE,
    wait_on   INTEGER NOT NULL,
    on_unmet  INTEGER NOT NULL,
    outcome   INTEGER NULL,
    PRIMARY KEY (parent_id, job_id)
);
CREATE INDEX keel_job_dependencies_child ON keel_job_dependencies (job_id);

-- Batches: counters moved by each job's final outcome in its own transaction; completed_at is set (and the
-- callbacks enqueued) by the transaction that moves the last pending job, and only by that one.
CREATE TABLE keel_batches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_batch_id INTEGER NULL,
    description     TEXT    NULL,
    total           INTEGER NOT NULL DEFAULT 0,
    pending         INTEGER NOT NULL DEFAULT 0,
    succeeded       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    discarded       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    completed_at    INTEGER NULL,
    succeeded_at    INTEGER NULL
);
CREATE INDEX keel_batches_completed ON keel_batches (completed_at) WHERE completed_at IS NOT NULL;

-- A batch's callbacks: the job to enqueue (a serialized NewJob) and, once enqueued, its id.
CREATE TABLE keel_batch_callbacks (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL REFERENCES keel_batches (id) ON DELETE CASCADE,
    on_event TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    job      TEXT    NOT NULL,
    job_id   INTEGER NULL
);
CREATE INDEX keel_batch_callbacks_batch ON keel_batch_callbacks (batch_id);

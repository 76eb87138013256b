-- Workflows (docs/workflows.md). A plain job leaves both columns null, so its completion pays nothing for them:
-- workflow = 1 when jobs wait on it (it has dependency edges as a parent); batch_id when it counts in a batch.
ALTER TABLE keel_jobs ADD COLUMN workflow integer NULL;
ALTER TABLE keel_jobs ADD COLUMN batch_id bigint NULL;
CREATE INDEX keel_jobs_batch ON keel_jobs (batch_id, id) WHERE batch_id IS NOT NULL;

-- A job waiting for its parents: `waiting` counts the parents not yet settled.
CREATE TABLE keel_awaiting_executions (
    job_id     bigint      PRIMARY KEY REFERENCES keel_jobs (id) ON DELETE CASCADE,
    queue      text        NOT NULL,
    priority   integer     NOT NULL,
    waiting    integer     NOT NULL,
    created_at timestamptz NOT NULL
);

-- One row per edge: the child (job_id) waits for the parent's outcomes in wait_on (1 succeeded, 2 failed,
-- 4 discarded); on_unmet 0 discards the child on another outcome, 1 runs it anyway; outcome is null until the parent
-- settles. No foreign key on the parent: a parent deleted by retention leaves its children's record of it.
CREATE TABLE keel_job_dependencies (
    parent_id bigint  NOT NULL,
    job_id    bigint  NOT NULL REFERENCES keel_jobs (id) ON DELETE CASCADE,
    wait_on   integer NOT NULL,
    on_unmet  integer NOT NULL,
    outcome   integer NULL,
    PRIMARY KEY (parent_id, job_id)
);
CREATE INDEX keel_job_dependencies_child ON keel_job_dependencies (job_id);

-- Batches: counters moved by each job's final outcome in its own transaction; completed_at is set (and the
-- callbacks enqueued) by the transaction that moves the last pending job, and only by that one.
CREATE TABLE keel_batches (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_batch_id bigint      NULL,
    description     text        NULL,
    total           bigint      NOT NULL DEFAULT 0,
    pending         bigint      NOT NULL DEFAULT 0,
    succeeded       bigint      NOT NULL DEFAULT 0,
    failed          bigint      NOT NULL DEFAULT 0,
    discarded       bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    completed_at    timestamptz NULL,
    succeeded_at    timestamptz NULL
);
CREATE INDEX keel_batches_completed ON keel_batches (completed_at) WHERE completed_at IS NOT NULL;

-- A batch's callbacks: the job to enqueue (a serialized NewJob) and, once enqueued, its id.
CREATE TABLE keel_batch_callbacks (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id bigint NOT NULL REFERENCES keel_batches (id) ON DELETE CASCADE,
    on_event text   NOT NULL,
    kind     text   NOT NULL,
    job      text   NOT NULL,
    job_id   bigint NULL
);
CREATE INDEX keel_batch_callbacks_batch ON keel_batch_callbacks (batch_id);

-- Raised by a completion that ran outside an explicit transaction (the hot path: one implicit transaction per batch
-- of completions) and met a job in a workflow: the whole batch rolls back, and the caller completes again in a
-- transaction of its own that also advances the workflow. A plain job never calls it.
CREATE FUNCTION keel_workflow_needed() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'a completed job takes part in a workflow; complete it in a transaction' USING ERRCODE = 'KL001';
END
$$;

-- Keel schema v1 (SQLite). Times are integer microseconds since the Unix epoch (UTC).
-- AUTOINCREMENT keeps ids from ever being reused, which claim fencing relies on.
CREATE TABLE keel_processes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL,
    pid               INTEGER NOT NULL,
    hostname          TEXT    NOT NULL,
    started_at        INTEGER NOT NULL,
    supervisor_id     INTEGER NULL,
    last_heartbeat_at INTEGER NOT NULL,
    metadata          TEXT    NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL
);
CREATE INDEX keel_processes_heartbeat ON keel_processes (last_heartbeat_at);
CREATE INDEX keel_processes_supervisor ON keel_processes (supervisor_id);

CREATE TABLE keel_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    queue           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    args            TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    scheduled_at    INTEGER NULL,
    concurrency_key TEXT    NULL,
    unique_key      TEXT    NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    worker_losses   INTEGER NOT NULL DEFAULT 0,
    trace_parent    TEXT    NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER NULL
);
CREATE INDEX keel_jobs_finished ON keel_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX keel_jobs_kind ON keel_jobs (kind);
CREATE INDEX keel_jobs_queue ON keel_jobs (queue);

CREATE TABLE keel_ready_executions (
    job_id     INTEGER PRIMARY KEY REFERENCES keel_jobs (id) ON DELETE CASCADE,
    queue      TEXT    NOT NULL,
    priority   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX keel_ready_poll_all ON keel_ready_executions (priority, job_id);
CREATE INDEX keel_ready_poll_by_queue ON keel_ready_executions (queue, priority, job_id);

CREATE TABLE keel_claimed_executions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL UNIQUE REFERENCES keel_jobs (id) ON DELETE CASCADE,
    process_id INTEGER NOT NULL REFERENCES keel_processes (id) ON DELETE RESTRICT,
    attempt    INTEGER NOT NULL,
    claimed_at INTEGER NOT NULL
);
CREATE INDEX keel_claimed_process ON keel_claimed_executions (process_id);

CREATE TABLE keel_scheduled_executions (
    job_id       INTEGER PRIMARY KEY REFERENCES keel_jobs (id) ON DELETE CASCADE,
    queue        TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    scheduled_at INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX keel_scheduled_dispatch ON keel_scheduled_executions (scheduled_at, priority, job_id);

CREATE TABLE keel_failed_executions (
    job_id         INTEGER PRIMARY KEY REFERENCES keel_jobs (id) ON DELETE CASCADE,
    exception_type TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    stack_trace    TEXT    NULL,
    attempt        INTEGER NOT NULL,
    cause          TEXT    NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX keel_failed_exception_type ON keel_failed_executions (exception_type);

CREATE TABLE keel_job_errors (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         INTEGER NOT NULL REFERENCES keel_jobs (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    exception_type TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    stack_trace    TEXT    NULL,
    cause          TEXT    NULL,
    occurred_at    INTEGER NOT NULL
);
CREATE INDEX keel_job_errors_job ON keel_job_errors (job_id);

CREATE TABLE keel_blocked_executions (
    job_id          INTEGER PRIMARY KEY REFERENCES keel_jobs (id) ON DELETE CASCADE,
    queue           TEXT    NOT NULL,
    priority        INTEGER NOT NULL,
    concurrency_key TEXT    NOT NULL,
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX keel_blocked_release ON keel_blocked_executions (concurrency_key, priority, job_id);
CREATE INDEX keel_blocked_maintenance ON keel_blocked_executions (expires_at, concurrency_key);

CREATE TABLE keel_semaphores (
    key        TEXT    PRIMARY KEY,
    value      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX keel_semaphores_expires ON keel_semaphores (expires_at);

CREATE TABLE keel_pauses (
    queue      TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
);

CREATE TABLE keel_recurring_tasks (
    key         TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    schedule    TEXT    NOT NULL,
    time_zone   TEXT    NULL,
    queue       TEXT    NULL,
    priority    INTEGER NULL,
    static      INTEGER NOT NULL DEFAULT 1,
    description TEXT    NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE keel_recurring_executions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_key   TEXT    NOT NULL,
    run_at     INTEGER NOT NULL,
    job_id     INTEGER NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (task_key, run_at)
);

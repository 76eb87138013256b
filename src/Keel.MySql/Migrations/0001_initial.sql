-- Keel schema v1 (MariaDB >= 10.6 / MySQL 8). Times are BIGINT microseconds since the Unix epoch (UTC), from the
-- database clock unless a caller pins them. Text compares byte-wise (utf8mb4_bin), as on SQLite and PostgreSQL: queue
-- names, kinds and keys are case-sensitive. Claim fencing relies on ids never being reused: InnoDB keeps its
-- AUTO_INCREMENT counters across restarts (MariaDB 10.2.4 and later, MySQL 8).
CREATE TABLE keel_processes (
    id                BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name              VARCHAR(255) NOT NULL,
    kind              VARCHAR(64)  NOT NULL,
    pid               INT          NOT NULL,
    hostname          VARCHAR(255) NOT NULL,
    started_at        BIGINT       NOT NULL,
    supervisor_id     BIGINT       NULL,
    last_heartbeat_at BIGINT       NOT NULL,
    metadata          LONGTEXT     NOT NULL,
    created_at        BIGINT       NOT NULL,
    UNIQUE KEY keel_processes_name (name),
    KEY keel_processes_heartbeat (last_heartbeat_at),
    KEY keel_processes_supervisor (supervisor_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_jobs (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue           VARCHAR(255) NOT NULL,
    kind            VARCHAR(255) NOT NULL,
    args            LONGTEXT     NOT NULL,
    priority        INT          NOT NULL DEFAULT 0,
    scheduled_at    BIGINT       NULL,
    concurrency_key VARCHAR(512) NULL,
    unique_key      VARCHAR(512) NULL,
    attempts        INT          NOT NULL DEFAULT 0,
    max_attempts    INT          NOT NULL,
    worker_losses   INT          NOT NULL DEFAULT 0,
    trace_parent    VARCHAR(255) NULL,
    created_at      BIGINT       NOT NULL,
    finished_at     BIGINT       NULL,
    KEY keel_jobs_finished (finished_at),
    KEY keel_jobs_kind (kind),
    KEY keel_jobs_queue (queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_ready_executions (
    job_id     BIGINT       NOT NULL PRIMARY KEY,
    queue      VARCHAR(255) NOT NULL,
    priority   INT          NOT NULL,
    created_at BIGINT       NOT NULL,
    KEY keel_ready_poll_all (priority, job_id),
    KEY keel_ready_poll_by_queue (queue, priority, job_id),
    CONSTRAINT keel_ready_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_claimed_executions (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id     BIGINT NOT NULL,
    process_id BIGINT NOT NULL,
    attempt    INT    NOT NULL,
    claimed_at BIGINT NOT NULL,
    UNIQUE KEY keel_claimed_job (job_id),
    KEY keel_claimed_process (process_id),
    CONSTRAINT keel_claimed_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE,
    CONSTRAINT keel_claimed_process FOREIGN KEY (process_id) REFERENCES keel_processes (id) ON DELETE RESTRICT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_scheduled_executions (
    job_id       BIGINT       NOT NULL PRIMARY KEY,
    queue        VARCHAR(255) NOT NULL,
    priority     INT          NOT NULL,
    scheduled_at BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    KEY keel_scheduled_dispatch (scheduled_at, priority, job_id),
    CONSTRAINT keel_scheduled_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_failed_executions (
    job_id         BIGINT       NOT NULL PRIMARY KEY,
    exception_type VARCHAR(512) NOT NULL,
    message        LONGTEXT     NOT NULL,
    stack_trace    LONGTEXT     NULL,
    attempt        INT          NOT NULL,
    cause          VARCHAR(255) NULL,
    created_at     BIGINT       NOT NULL,
    KEY keel_failed_exception_type (exception_type),
    CONSTRAINT keel_failed_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_job_errors (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id         BIGINT       NOT NULL,
    attempt        INT          NOT NULL,
    exception_type VARCHAR(512) NOT NULL,
    message        LONGTEXT     NOT NULL,
    stack_trace    LONGTEXT     NULL,
    cause          VARCHAR(255) NULL,
    occurred_at    BIGINT       NOT NULL,
    KEY keel_job_errors_job (job_id),
    CONSTRAINT keel_job_errors_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_blocked_executions (
    job_id          BIGINT       NOT NULL PRIMARY KEY,
    queue           VARCHAR(255) NOT NULL,
    priority        INT          NOT NULL,
    concurrency_key VARCHAR(512) NOT NULL,
    expires_at      BIGINT       NOT NULL,
    created_at      BIGINT       NOT NULL,
    KEY keel_blocked_release (concurrency_key, priority, job_id),
    KEY keel_blocked_maintenance (expires_at, concurrency_key),
    CONSTRAINT keel_blocked_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_semaphores (
    `key`      VARCHAR(512) NOT NULL PRIMARY KEY,
    value      INT          NOT NULL,
    expires_at BIGINT       NOT NULL,
    created_at BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL,
    KEY keel_semaphores_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_pauses (
    queue      VARCHAR(255) NOT NULL PRIMARY KEY,
    created_at BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_recurring_tasks (
    `key`       VARCHAR(255) NOT NULL PRIMARY KEY,
    kind        VARCHAR(255) NOT NULL,
    args        LONGTEXT     NOT NULL,
    schedule    VARCHAR(255) NOT NULL,
    time_zone   VARCHAR(255) NULL,
    queue       VARCHAR(255) NULL,
    priority    INT          NULL,
    static      TINYINT(1)   NOT NULL DEFAULT 1,
    description TEXT         NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE keel_recurring_executions (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_key   VARCHAR(255) NOT NULL,
    run_at     BIGINT       NOT NULL,
    job_id     BIGINT       NULL,
    created_at BIGINT       NOT NULL,
    UNIQUE KEY keel_recurring_executions_run (task_key, run_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Leases (DESIGN §2.4): a process may run its claims until lease_expires_at, in database time, renewed by every
-- heartbeat; others recover them after that, or earlier only on a certain sign of death.
-- Where a pid check is valid: the boot id and pid namespace of the process's host (null: never check its pid), and
-- the pid's start time in clock ticks since boot (/proc/<pid>/stat), which no wall-clock step can change.
-- Always 'lease' on MariaDB/MySQL (no session liveness); kept so every engine's process rows read alike.
-- stopping_at is set when a process begins a graceful stop: whatever it leaves behind is recovered without charging its jobs.
ALTER TABLE keel_processes
    ADD COLUMN lease_expires_at BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN host_id VARCHAR(255) NULL,
    ADD COLUMN pid_start_ticks BIGINT NULL,
    ADD COLUMN liveness VARCHAR(16) NOT NULL DEFAULT 'lease',
    ADD COLUMN stopping_at BIGINT NULL,
    ADD KEY keel_processes_lease (lease_expires_at);
UPDATE keel_processes SET lease_expires_at = last_heartbeat_at + 30000000;

-- Exact blame (DESIGN §2.5): a job that was running beside others when its process died counts a shared loss,
-- uncharged; at its second it becomes a suspect and runs alone in its process until one of its runs ends by itself,
-- so the next death names its culprit. Who ran a finished job's last attempt (JSON: process row id, name, pid, host)
-- is written by its completion.
ALTER TABLE keel_jobs
    ADD COLUMN suspect TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN shared_losses INT NOT NULL DEFAULT 0,
    ADD COLUMN finished_by TEXT NULL;
-- The claim's index walks: suspects apart (MariaDB has no partial indexes, so suspect leads the key).
ALTER TABLE keel_ready_executions
    ADD COLUMN suspect TINYINT(1) NOT NULL DEFAULT 0,
    DROP KEY keel_ready_poll_all,
    DROP KEY keel_ready_poll_by_queue,
    ADD KEY keel_ready_poll_all (suspect, priority, job_id),
    ADD KEY keel_ready_poll_by_queue (queue, suspect, priority, job_id);
-- A claim whose job did not stop when cancelled: its process is replaced, and this job alone is charged for it.
ALTER TABLE keel_claimed_executions ADD COLUMN unresponsive_at BIGINT NULL;

-- Every run that did not finish the job: failed, lost with its worker, released uncharged (stop, fence, reconcile),
-- rejected as a late result, abandoned. A finished run is told by keel_jobs (started_at, finished_at, finished_by).
CREATE TABLE keel_job_runs (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id      BIGINT       NOT NULL,
    attempt     INT          NOT NULL,
    claim_id    BIGINT       NULL,
    runner      TEXT         NULL,
    started_at  BIGINT       NULL,
    ended_at    BIGINT       NOT NULL,
    outcome     VARCHAR(64)  NOT NULL,
    cause       VARCHAR(255) NULL,
    charged     TINYINT(1)   NOT NULL DEFAULT 0,
    detail      LONGTEXT     NULL,
    shared_with LONGTEXT     NULL,
    KEY keel_job_runs_job (job_id),
    CONSTRAINT keel_job_runs_job FOREIGN KEY (job_id) REFERENCES keel_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
